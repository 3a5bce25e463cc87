/**
 * An AbortController made only when its signal is first read. A worker keeps one per job for the
 * handler's `ctx.signal`; a handler that never looks at it costs no controller, which counts when
 * jobs are trivial and thousands run each second. An abort before the first read is kept and
 * applied to the signal when it is made.
 */
export class LazyAbortController {
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;

  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /** Like AbortController.abort: the first reason wins. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
  }
}
