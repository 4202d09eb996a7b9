// Metric observations (needs the `metrics` grant). Labels are an object: counter('fetches', 1, { zone }).
import * as raw from 'plughost:plugin/metrics@0.1.0';

const pairs = (labels = {}) => Object.entries(labels).map(([key, value]) => ({ key, value: String(value) }));

export const counter = (name, delta = 1, labels) => raw.counterAdd(name, BigInt(delta), pairs(labels));
export const gauge = (name, value, labels) => raw.gaugeSet(name, value, pairs(labels));
export const histogram = (name, value, labels) => raw.histogramObserve(name, value, pairs(labels));
