/** Metric observations (needs the `metrics` grant). */
type Labels = Record<string, unknown>;
export declare function counter(name: string, delta?: number, labels?: Labels): void;
export declare function gauge(name: string, value: number, labels?: Labels): void;
export declare function histogram(name: string, value: number, labels?: Labels): void;
