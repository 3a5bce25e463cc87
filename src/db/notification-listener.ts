import type { FastifyBaseLogger } from 'fastify';
import pg from 'pg';
import { backoffDelayMs } from '../domain/backoff.js';
import { describeDatabaseError } from './database-errors.js';

/** The channels of the jobs trigger (migration 0002). Payload: the job id, on insert and on every status or cancelled change. */
export const JOB_CHANGED_CHANNEL = 'job_changed';
/**
 * Payload: `<organization_id> <endpoint>` of a job that becomes queued (inserted so, or moved back
 * there); migration 0006.
 */
export const JOB_QUEUED_CHANNEL = 'job_queued';

export interface NotificationListener {
  /** Calls onNotify for every notification on `channel` (e.g. 'job_queued'); returns unsubscribe. */
  subscribe(channel: string, onNotify: (payload: string) => void): () => void;
  /**
   * Resolves true when a notification with exactly this payload arrives on `channel`, false when
   * `signal` aborts or the timeout passes. Cost while waiting: no query.
   * Also resolves true after a reconnect: notifications sent while the connection was down are
   * lost, so every waiter must look again at what it waits for.
   */
  waitFor(
    channel: string,
    payload: string,
    options: { timeoutMs: number; signal?: AbortSignal },
  ): Promise<boolean>;
  /**
   * Calls `hook` after every reconnect (once LISTEN is in place again), for subscribers that must
   * catch up on what they may have missed; returns unsubscribe. subscribe() callbacks are not
   * called on reconnect: there is no payload to give them.
   */
  onReconnect(hook: () => void): () => void;
  /** Pending waitFor calls on `channel` (for `payload` only, when given); for tests and metrics. */
  pendingCount(channel: string, payload?: string): number;
  /** Connects and LISTENs; rejects when the first connection fails. */
  start(): Promise<void>;
  /** Stops reconnecting, resolves every pending waitFor with false, ends the connection. */
  close(): Promise<void>;
}

export interface NotificationListenerOptions {
  connectionString: string;
  channels: string[];
  logger: FastifyBaseLogger;
  /** Name shown in pg_stat_activity. */
  applicationName?: string;
  /** Longest wait for a connection, and for the answer to LISTEN or a probe (default 5 s). */
  connectTimeoutMs?: number;
  /** How often the connection is probed with `select 1` (default 30 s). */
  probeIntervalMs?: number;
}

const RECONNECT_DELAY = { baseMs: 100, maxMs: 5_000 };
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const DEFAULT_PROBE_INTERVAL_MS = 30_000;

type Wake = (notified: boolean) => void;

/**
 * One dedicated connection per process (never a pool client: a pooled connection would lose its
 * LISTENs when handed back) that fans notifications out in memory. Waiters are indexed by
 * channel and payload, so a notification costs one map lookup whatever the number of waiters.
 *
 * A LISTEN connection only ever reads, so a database that stopped answering (paused, or a network
 * that drops packets without a reset) would leave it waiting for ever, and every status wait with
 * it. TCP keepalive cannot tell: the kernel of a paused server still answers its probes, and its
 * timing is the system's (two hours by default). So the connection is probed with `select 1`
 * every probeIntervalMs; a probe (like the connect and LISTEN) unanswered within the connect
 * timeout ends the connection and a reconnect begins. One warning per lost connection, one line
 * when it is back; the failed attempts in between are debug lines.
 */
export function createNotificationListener(options: NotificationListenerOptions): NotificationListener {
  const { logger } = options;
  const channels = new Set(options.channels);
  const waiters = new Map<string, Map<string, Set<Wake>>>();
  const subscribers = new Map<string, Set<(payload: string) => void>>();
  const reconnectHooks = new Set<() => void>();
  for (const channel of channels) {
    waiters.set(channel, new Map());
    subscribers.set(channel, new Set());
  }

  let client: pg.Client | undefined;
  let started = false;
  let closed = false;
  let failures = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const probeIntervalMs = options.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;

  const requireChannel = (channel: string) => {
    if (!channels.has(channel)) {
      throw new Error(`notification channel '${channel}' is not listened to (channels: ${[...channels]})`);
    }
  };

  const dispatch = (message: pg.Notification) => {
    const payload = message.payload ?? '';
    const woken = waiters.get(message.channel)?.get(payload);
    if (woken) for (const wake of [...woken]) wake(true);
    for (const onNotify of subscribers.get(message.channel) ?? []) {
      try {
        onNotify(payload);
      } catch (error) {
        logger.error({ err: error, channel: message.channel }, 'notification subscriber failed');
      }
    }
  };

  const wakeAll = (notified: boolean) => {
    for (const byPayload of waiters.values()) {
      for (const set of byPayload.values()) for (const wake of [...set]) wake(notified);
    }
  };

  async function connect(): Promise<void> {
    const candidate = new pg.Client({
      connectionString: options.connectionString,
      application_name: options.applicationName ?? 'jobs-server-listener',
      keepAlive: true,
      connectionTimeoutMillis: connectTimeoutMs,
      // LISTEN and the probes. pg fails the query but leaves the connection as it is: onLost and
      // connect() end it at once.
      query_timeout: connectTimeoutMs,
    });
    let lost = false;
    let probe: NodeJS.Timeout | undefined;
    const onLost = (error?: Error) => {
      if (lost) return;
      lost = true;
      clearInterval(probe);
      if (client !== candidate) return; // still connecting: connect() sees the failure itself
      client = undefined;
      candidate.end().catch(() => {});
      if (closed) return;
      logger.warn(
        { reason: error ? describeDatabaseError(error) : 'the connection ended' },
        'notification listener lost its database connection; reconnecting',
      );
      scheduleReconnect();
    };
    candidate.on('error', onLost);
    candidate.on('end', () => onLost());
    candidate.on('notification', dispatch);
    try {
      await candidate.connect();
      await candidate.query([...channels].map((c) => `LISTEN ${candidate.escapeIdentifier(c)}`).join('; '));
      if (lost) throw new Error('connection lost while setting up LISTEN');
      if (closed) throw new Error('notification listener closed');
    } catch (error) {
      lost = true;
      await candidate.end().catch(() => {});
      throw error;
    }
    client = candidate;
    let probing = false;
    probe = setInterval(() => {
      if (probing) return; // the last probe is still within its timeout
      probing = true;
      candidate
        .query('select 1')
        .catch((error: Error) => onLost(error))
        .finally(() => {
          probing = false;
        });
    }, probeIntervalMs);
    probe.unref();
  }

  function scheduleReconnect() {
    if (closed || reconnectTimer) return;
    const delay = backoffDelayMs(failures, RECONNECT_DELAY);
    reconnectTimer = setTimeout(async () => {
      try {
        await connect();
      } catch (error) {
        failures++;
        reconnectTimer = undefined;
        if (!closed) {
          logger.debug(
            { reason: describeDatabaseError(error), failures },
            'notification listener could not reconnect',
          );
        }
        scheduleReconnect();
        return;
      }
      reconnectTimer = undefined;
      failures = 0;
      logger.info('notification listener reconnected');
      wakeAll(true);
      for (const hook of [...reconnectHooks]) {
        try {
          hook();
        } catch (error) {
          logger.error({ err: error }, 'notification reconnect hook failed');
        }
      }
    }, delay);
  }

  return {
    subscribe(channel, onNotify) {
      requireChannel(channel);
      const set = subscribers.get(channel) as Set<(payload: string) => void>;
      // A wrapper, so the same function subscribed twice is two subscriptions.
      const entry = (payload: string) => onNotify(payload);
      set.add(entry);
      return () => {
        set.delete(entry);
      };
    },

    waitFor(channel, payload, { timeoutMs, signal }) {
      try {
        requireChannel(channel);
      } catch (error) {
        return Promise.reject(error);
      }
      if (closed || signal?.aborted) return Promise.resolve(false);
      const byPayload = waiters.get(channel) as Map<string, Set<Wake>>;
      return new Promise<boolean>((resolve) => {
        let set = byPayload.get(payload);
        if (!set) {
          set = new Set();
          byPayload.set(payload, set);
        }
        const own = set;
        const onAbort = () => wake(false);
        const timer = setTimeout(onAbort, Math.max(0, timeoutMs));
        const wake: Wake = (notified) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          own.delete(wake);
          if (own.size === 0 && byPayload.get(payload) === own) byPayload.delete(payload);
          resolve(notified);
        };
        own.add(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    },

    onReconnect(hook) {
      const entry = () => hook();
      reconnectHooks.add(entry);
      return () => {
        reconnectHooks.delete(entry);
      };
    },

    pendingCount(channel, payload) {
      const byPayload = waiters.get(channel);
      if (!byPayload) return 0;
      if (payload !== undefined) return byPayload.get(payload)?.size ?? 0;
      let count = 0;
      for (const set of byPayload.values()) count += set.size;
      return count;
    },

    async start() {
      if (started) return;
      started = true;
      await connect();
    },

    async close() {
      closed = true;
      clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      wakeAll(false);
      const current = client;
      client = undefined;
      if (!current) return;
      // A database that does not answer never acknowledges the goodbye: then the socket is cut.
      const cut = setTimeout(() => current.connection.stream.destroy(), connectTimeoutMs);
      await current.end().catch(() => {});
      clearTimeout(cut);
    },
  };
}
