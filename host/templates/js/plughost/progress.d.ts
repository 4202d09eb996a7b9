/** `done` of `total` units (`total` when known; `done` should only grow); `message` says what is happening. */
export declare function report(done: number, total?: number, message?: string): void;
