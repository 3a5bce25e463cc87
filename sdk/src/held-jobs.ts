import type { Heartbeats } from './heartbeats.js';
import type { LazyAbortController } from './lazy-abort.js';
import type { Job } from './types.js';

/** A claimed job from its claim until its outcome is reported or it is released. */
export interface HeldJob {
  job: Job;
  leaseToken: string;
  /** Aborts the handler's ctx.signal. */
  controller: LazyAbortController;
  /** running: the handler has not settled; reporting: its outcome is being sent. */
  phase: 'running' | 'reporting';
  cancelRequested: boolean;
  leaseLost: boolean;
  /** Handed back at shutdown: the handler's outcome is dropped. */
  released: boolean;
  heartbeats?: Heartbeats;
  /** Settles once the job has let go of its slot. */
  done: Promise<void>;
}

/** The jobs a worker holds, one per slot, and a way to wait for a slot to free up. */
export class HeldJobs {
  readonly #jobs = new Map<string, HeldJob>();
  #slotWaiters: (() => void)[] = [];

  get size(): number {
    return this.#jobs.size;
  }

  list(): HeldJob[] {
    return [...this.#jobs.values()];
  }

  add(entry: HeldJob): void {
    this.#jobs.set(entry.job.id, entry);
  }

  remove(jobId: string): void {
    this.#jobs.delete(jobId);
    this.wakeSlotWaiters();
  }

  /** Resolves the next time a job lets go of its slot, or wakeSlotWaiters() is called. */
  slotFreed(): Promise<void> {
    return new Promise((resolve) => this.#slotWaiters.push(resolve));
  }

  wakeSlotWaiters(): void {
    if (this.#slotWaiters.length === 0) return;
    const waiters = this.#slotWaiters;
    this.#slotWaiters = [];
    for (const wake of waiters) wake();
  }
}
