import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { scrapedCounter, scrapedGauge } from '../../../src/backend/api/scraped.js';

describe('metrics read from plain counts at each scrape', () => {
  it('shows the count as it is at each scrape, counter and gauge alike', async () => {
    const registry = new Registry();
    let count = 3;
    let size = 7;
    scrapedCounter(registry, 'x_total', 'X', () => count);
    scrapedGauge(registry, 'y', 'Y', () => size);
    expect(await registry.metrics()).toMatch(/^x_total 3$[\s\S]*^y 7$/m);
    count = 5;
    size = 2;
    const text = await registry.metrics();
    expect(text).toMatch(/^x_total 5$/m);
    expect(text).toMatch(/^y 2$/m);
    expect(text).toContain('# TYPE x_total counter');
    expect(text).toContain('# TYPE y gauge');
  });
});
