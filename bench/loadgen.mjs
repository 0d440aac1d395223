/**
 * Load generator for bench/sync_load.py: many Yjs clients in one Node process.
 *
 * Every full client is a real `Y.Doc` + y-websocket `WebsocketProvider` holding a
 * JupyterLab YNotebook (`cells` Y.Array of Y.Maps with a `source` Y.Text), so it
 * behaves as a browser does: it answers sync, renews its presence every 15 s and
 * re-sends every awareness change it receives. Raw receivers (for the busy-room
 * throughput) are bare `ws` sockets that send sync step 1 and count update frames.
 *
 * Latency. An edit is one character typed into a cell's source. Its Yjs ID
 * (clientID, clock) identifies it: the sender notes `performance.now()` for that
 * clock just before the transaction (which encodes the update and hands it to
 * the socket), and every other client of the room notes when the clock appears in
 * its document (an `afterTransaction` with a new state-vector range), i.e. after
 * the update was applied. Both stamps come from this one process's clock. Nothing
 * walks the text (a Y.Text observer's delta would scan the whole text per change).
 * An edit still missing somewhere after the drain is a lost update.
 *
 * Protocol: one JSON command per stdin line `{"id", "cmd", ...args}`, exactly one
 * reply line `{"id", "ok": true, ...}` or `{"id", "ok": false, "error"}`; other
 * stdout lines are events `{"event": ...}`: `ready`, `window` {phase: start|end}
 * (the measured window of a `run` or `flood`, so the caller samples the server's
 * CPU at the same moments), `close` {client, code, reason} (a server closed a
 * socket), `error` {error}.
 *
 * Commands:
 *   connect {clients: [{name, url, room, params?, cell?, seed?, expectCells?}],
 *            concurrency?, timeoutMs?, deadlineMs?}
 *       Connects full clients, `concurrency` at a time, each until synced (none is
 *       started after `deadlineMs`, and those count as failed); a `seed`
 *       client fills an empty document with `seed` (the notebook's cells); an
 *       `expectCells` client also waits until it holds that many cells. Then each
 *       types into cell `cell` (modulo the cell count), at the end of its text.
 *       -> {connected, failed, failures: [first 10 {name, error}]}
 *   raw {clients: [{name, url, room, params?}], concurrency?, timeoutMs?}
 *       Connects raw receivers. -> {connected, failed, failures}
 *   run {clients: [names] | "all", rate, seconds, warmupSeconds, cursors,
 *        renewEvery?, drainMs?, stallMs?}
 *       Types `rate` edits per second in all, spread round-robin over the clients
 *       (interleaved across rooms); with `cursors`, each edit also sets the typing
 *       client's awareness `cursor`. After `warmupSeconds` the window opens for
 *       `seconds`; with `renewEvery` > 0 every client renews its presence (same
 *       state, new clock) in the same tick, every `renewEvery` s of the window.
 *       Then typing stops and the run waits for every edit to reach every other
 *       client of its room, as long as edits still arrive (`stallMs` without one ends
 *       the wait), `drainMs` at most; what is missing then is lost. -> {sent, samples,
 *       lost, undelivered edits, drainMs (how long the backlog took),
 *       latency {p50, p90, p99, p999, max} ms (edits sent in the window), generator
 *       {cpu (fraction of one core), loopDelayP99, loopDelayMax ms}, bursts}
 *   flood {writers: [names], probe: name, seconds, warmupSeconds, inflight}
 *       Busy room: the writers type as fast as the server delivers, keeping at most
 *       `inflight` edits not yet at the probe (a full client, ideally connected
 *       last). Counts update frames at raw receivers and edits at full clients.
 *       -> {edits, delivered, seconds, latency at the probe, generator}
 *   disconnect {clients: [names] | "all"}   close, wait for the close handshake
 *   memory -> {rss, heapUsed, clients, raw}
 *   quit
 */

import { createRequire } from 'node:module'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { readFileSync } from 'node:fs'
import readline from 'node:readline'

// The Node packages of the interop tests (npm ci --prefix tests/interop), loaded
// through their CommonJS builds so y-websocket and this file share one yjs.
const require = createRequire(new URL('../tests/interop/package.json', import.meta.url))
const Y = require('yjs')
const { WebsocketProvider } = require('y-websocket')
const WebSocket = require('ws')

/** @typedef {Record<string, any>} Json */

/** @param {Json} line */
const emit = (line) => { process.stdout.write(JSON.stringify(line) + '\n') }

const LETTERS = 'abcdefghijklmnopqrstuvwxyz'
const SYNC_STEP1_EMPTY = Uint8Array.from([0, 0, 1, 0]) // messageSync, step 1, empty state vector

/** Latencies in ms, in a growable typed array. */
class Samples {
  constructor () { this.values = new Float64Array(1 << 16); this.length = 0 }
  /** @param {number} v */
  push (v) {
    if (this.length === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2)
      bigger.set(this.values)
      this.values = bigger
    }
    this.values[this.length++] = v
  }

  summary () {
    const sorted = this.values.slice(0, this.length).sort()
    /** @param {number} p */
    const at = (p) => sorted.length === 0 ? null : sorted[Math.max(0, Math.ceil(p / 100 * sorted.length) - 1)]
    return { count: this.length, p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: at(100) }
  }
}

/** One edit in flight: when it was sent, how many clients still have to receive it. */
class Edit {
  /** @param {number} t @param {number} left @param {boolean} inWindow */
  constructor (t, left, inWindow) { this.t = t; this.left = left; this.inWindow = inWindow }
}

const state = {
  /** @type {Map<string, Client>} */
  clients: new Map(),
  /** @type {Map<string, RawReceiver>} */
  raw: new Map(),
  /** @type {Map<string, Set<Client>>} room key -> connected full clients */
  rooms: new Map(),
  /** @type {Map<number, Map<number, Edit>>} sender clientID -> clock -> edit in flight */
  pending: new Map(),
  outstanding: 0, // edits in `pending`
  measuring: false,
  latencies: new Samples(),
  delivered: 0, // edit arrivals at full clients (every edit, in or out of the window)
  /** @type {Array<Burst>} */
  bursts: [],
  /** @type {null | ((receiver: Client, clientID: number, clock: number) => void)} */
  floodProbe: null
}

/** @param {string} url @param {string} room */
const roomKey = (url, room) => `${url}/${room}`

/**
 * The YNotebook cells of a seed, as in JupyterLab (what the server builds from an .ipynb).
 * @param {Array<{id: string, source: string}>} cells
 */
const makeCells = (cells) => cells.map(({ id, source }) => {
  const cell = new Y.Map()
  cell.set('id', id)
  cell.set('cell_type', 'code')
  cell.set('source', new Y.Text(source))
  cell.set('metadata', new Y.Map())
  cell.set('outputs', new Y.Array())
  cell.set('execution_count', null)
  return cell
})

class Client {
  /** @param {Json} spec */
  constructor (spec) {
    this.name = spec.name
    this.spec = spec
    this.key = roomKey(spec.url, spec.room)
    this.doc = new Y.Doc()
    this.provider = new WebsocketProvider(spec.url, spec.room, this.doc, {
      connect: false,
      disableBc: true, // same-process clients must go through the server
      params: spec.params ?? {},
      WebSocketPolyfill: /** @type {any} */ (WebSocket)
    })
    this.awareness = this.provider.awareness
    this.awareness.setLocalState({ user: { name: spec.name } })
    /** @type {Y.Text | null} */
    this.text = null
    this.cursor = 0
    this.typed = 0
    /** @type {Set<() => void>} */
    this.waiters = new Set()
    this.doc.on('afterTransaction', (/** @type {any} */ tr) => {
      if (!tr.local) received(this, tr)
      for (const waiter of this.waiters) waiter()
    })
    this.awareness.on('update', (/** @type {any} */ change, /** @type {any} */ origin) => {
      if (origin !== 'local' && state.bursts.length > 0) burstSeen(this, change)
    })
    this.provider.on('connection-close', (/** @type {any} */ event) => {
      if (event != null) emit({ event: 'close', client: this.name, code: event.code, reason: String(event.reason ?? '') })
    })
  }

  /** Resolve once `check()` holds; reject after `timeoutMs`. @param {() => boolean} check @param {number} timeoutMs @param {string} what */
  until (check, timeoutMs, what) {
    if (check()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const waiter = () => {
        if (!check()) return
        clearTimeout(timer)
        this.waiters.delete(waiter)
        resolve(undefined)
      }
      const timer = setTimeout(() => {
        this.waiters.delete(waiter)
        reject(new Error(`${this.name}: ${what} not reached in ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiters.add(waiter)
    })
  }

  /** @param {number} timeoutMs */
  async connect (timeoutMs) {
    const synced = new Promise((resolve) => {
      const onSync = (/** @type {boolean} */ isSynced) => {
        if (!isSynced) return
        this.provider.off('sync', onSync)
        resolve(undefined)
      }
      this.provider.on('sync', onSync)
    })
    const closed = new Promise((resolve) => {
      this.provider.on('connection-close', (/** @type {any} */ e) => resolve(e))
    })
    this.provider.connect()
    let timer
    const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve('timeout'), timeoutMs) })
    const first = await Promise.race([synced.then(() => 'synced'), timeout, closed.then((e) => e)])
    clearTimeout(timer)
    if (first !== 'synced') {
      const why = first === 'timeout' ? `not synced in ${timeoutMs} ms` : `closed ${first?.code} ${first?.reason ?? ''}`
      throw new Error(why)
    }
    const cells = this.doc.getArray('cells')
    if (this.spec.seed && cells.length === 0) {
      this.doc.transact(() => {
        const meta = this.doc.getMap('meta')
        meta.set('nbformat', 4)
        meta.set('nbformat_minor', 5)
        meta.set('metadata', new Y.Map([['kernelspec', { name: 'python3', display_name: 'Python 3', language: 'python' }]]))
        cells.push(makeCells(this.spec.seed))
      })
    }
    if (this.spec.expectCells) {
      await this.until(() => cells.length >= this.spec.expectCells, timeoutMs, `${this.spec.expectCells} cells`)
    }
    const cell = /** @type {Y.Map<any>} */ (cells.get((this.spec.cell ?? 0) % Math.max(1, cells.length)))
    this.text = cell?.get('source') ?? null
    this.cursor = this.text === null ? 0 : this.text.length
    let members = state.rooms.get(this.key)
    if (members === undefined) state.rooms.set(this.key, (members = new Set()))
    members.add(this)
  }

  /**
   * Type one character; with `cursor`, also move the awareness cursor; with
   * `track`, note the edit so every other client of the room is expected to get it.
   * @param {boolean} cursor @param {boolean} [track]
   */
  type (cursor, track = true) {
    const text = this.text
    if (text === null) throw new Error(`${this.name}: no cell to type in`)
    const clientID = this.doc.clientID
    const peers = (state.rooms.get(this.key)?.size ?? 1) - 1
    if (track && peers > 0) {
      let mine = state.pending.get(clientID)
      if (mine === undefined) state.pending.set(clientID, (mine = new Map()))
      mine.set(Y.getState(this.doc.store, clientID), new Edit(performance.now(), peers, state.measuring))
      state.outstanding++
    }
    const at = Math.min(this.cursor, text.length)
    text.insert(at, this.typed % 40 === 39 ? '\n' : LETTERS[this.typed % 26])
    this.cursor = at + 1
    this.typed++
    if (cursor) this.awareness.setLocalStateField('cursor', { cell: this.spec.cell ?? 0, index: this.cursor })
  }

  /** Close the socket; resolves when the close handshake is done (or after 5 s). */
  async close () {
    state.rooms.get(this.key)?.delete(this)
    const ws = this.provider.ws
    const done = ws && ws.readyState !== WebSocket.CLOSED
      ? new Promise((resolve) => { ws.addEventListener('close', () => resolve(undefined)); setTimeout(resolve, 5000) })
      : Promise.resolve()
    this.provider.destroy()
    await done
    this.doc.destroy()
  }
}

/** A bare socket in a room that only counts the update frames it receives. */
class RawReceiver {
  /** @param {Json} spec */
  constructor (spec) {
    this.name = spec.name
    this.spec = spec
    this.frames = 0
    /** @type {WebSocket | null} */
    this.ws = null
  }

  /** @param {number} timeoutMs */
  connect (timeoutMs) {
    const spec = this.spec
    const query = new URLSearchParams(spec.params ?? {}).toString()
    const ws = new WebSocket(`${spec.url}/${spec.room}${query ? '?' + query : ''}`)
    this.ws = ws
    ws.binaryType = 'nodebuffer'
    ws.on('message', (/** @type {Buffer} */ data) => {
      if (data[0] === 0 && data[1] === 2) this.frames++ // sync update
    })
    ws.on('close', (code, reason) => {
      if (code !== 1000 && code !== 1005) emit({ event: 'close', client: this.name, code, reason: String(reason) })
    })
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { ws.terminate(); reject(new Error(`not open in ${timeoutMs} ms`)) }, timeoutMs)
      ws.once('open', () => { clearTimeout(timer); ws.send(SYNC_STEP1_EMPTY); resolve(undefined) })
      ws.once('error', (err) => { clearTimeout(timer); reject(err) })
    })
  }

  async close () {
    const ws = this.ws
    if (ws === null || ws.readyState === WebSocket.CLOSED) return
    await new Promise((resolve) => { ws.once('close', resolve); ws.close(); setTimeout(resolve, 5000) })
  }
}

/**
 * Note the tracked edits a remote transaction brought to `receiver`.
 * @param {Client} receiver
 * @param {any} tr
 */
const received = (receiver, tr) => {
  const now = performance.now()
  for (const [clientID, after] of tr.afterState) {
    const before = tr.beforeState.get(clientID) ?? 0
    if (after <= before) continue
    if (state.floodProbe !== null) {
      for (let clock = before; clock < after; clock++) state.floodProbe(receiver, clientID, clock)
      continue
    }
    const mine = state.pending.get(clientID)
    if (mine === undefined) continue
    for (let clock = before; clock < after; clock++) {
      const edit = mine.get(clock)
      if (edit === undefined) continue
      state.delivered++
      if (edit.inWindow) state.latencies.push(now - edit.t)
      if (--edit.left === 0) {
        mine.delete(clock)
        state.outstanding--
      }
    }
  }
}

/** Everyone renewing their presence at once, and who has seen whose renewal. */
class Burst {
  /** @param {Client[]} clients */
  constructor (clients) {
    this.t = performance.now()
    /** @type {Map<number, number>} clientID -> clock of its renewal */
    this.targets = new Map()
    /** @type {Set<string>} "receiver|clientID" seen */
    this.seen = new Set()
    this.expected = 0
    /** @type {number | null} ms until every client had every renewal */
    this.completeMs = null
    /** @type {Map<string, number>} room -> members renewing */
    const perRoom = new Map()
    for (const c of clients) perRoom.set(c.key, (perRoom.get(c.key) ?? 0) + 1)
    for (const n of perRoom.values()) this.expected += n * (n - 1)
    for (const c of clients) {
      const aw = c.awareness
      aw.setLocalState(aw.getLocalState()) // a renewal: same state, next clock
      this.targets.set(c.doc.clientID, aw.meta.get(c.doc.clientID).clock)
    }
  }
}

/** @param {Client} receiver @param {{added: number[], updated: number[]}} change */
const burstSeen = (receiver, change) => {
  const now = performance.now()
  for (const burst of state.bursts) {
    if (burst.completeMs !== null) continue
    for (const id of [...change.added, ...change.updated]) {
      const target = burst.targets.get(id)
      if (target === undefined || id === receiver.doc.clientID) continue
      if ((receiver.awareness.meta.get(id)?.clock ?? -1) < target) continue
      const key = `${receiver.name}|${id}`
      if (burst.seen.has(key)) continue
      burst.seen.add(key)
      if (burst.seen.size === burst.expected) burst.completeMs = now - burst.t
    }
  }
}

/** @param {string[] | 'all'} names @return {Client[]} */
const fullClients = (names) => names === 'all'
  ? [...state.clients.values()]
  : names.map((n) => {
    const c = state.clients.get(n)
    if (c === undefined) throw new Error(`unknown client ${n}`)
    return c
  })

/** Round-robin across rooms: the i-th client of every room, then the (i+1)-th... @param {Client[]} clients */
const interleaved = (clients) => {
  /** @type {Map<string, Client[]>} */
  const byRoom = new Map()
  for (const c of clients) {
    let list = byRoom.get(c.key)
    if (list === undefined) byRoom.set(c.key, (list = []))
    list.push(c)
  }
  const order = []
  const lists = [...byRoom.values()]
  for (let i = 0; order.length < clients.length; i++) {
    for (const list of lists) if (i < list.length) order.push(list[i])
  }
  return order
}

/** @param {number} ms */
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Run `connectOne` over `specs`, `concurrency` at a time; none is started after `deadlineMs`.
 * @param {Json[]} specs @param {number} concurrency @param {(spec: Json) => Promise<void>} connectOne
 * @param {number} [deadlineMs]
 */
const connectAll = async (specs, concurrency, connectOne, deadlineMs = Infinity) => {
  let next = 0
  const deadline = performance.now() + deadlineMs
  /** @type {Array<{name: string, error: string}>} */
  const failures = []
  const worker = async () => {
    while (next < specs.length) {
      if (performance.now() > deadline) {
        while (next < specs.length) failures.push({ name: specs[next++].name, error: `not tried: past the ${deadlineMs} ms deadline` })
        return
      }
      const spec = specs[next++]
      try {
        await connectOne(spec)
      } catch (err) {
        failures.push({ name: spec.name, error: String(/** @type {Error} */ (err).message ?? err) })
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker))
  return { connected: specs.length - failures.length, failed: failures.length, failures: failures.slice(0, 10) }
}

/** CPU and event-loop delay of this process over a window. */
class GeneratorMeter {
  constructor () {
    this.loop = monitorEventLoopDelay({ resolution: 5 })
    this.loop.enable()
    this.cpu = process.cpuUsage()
    this.t = performance.now()
  }

  stop () {
    const cpu = process.cpuUsage(this.cpu)
    const seconds = (performance.now() - this.t) / 1000
    this.loop.disable()
    return {
      cpu: (cpu.user + cpu.system) / 1e6 / seconds,
      loopDelayP99: this.loop.percentile(99) / 1e6,
      loopDelayMax: this.loop.max / 1e6
    }
  }
}

/** @type {Record<string, (args: Json) => Promise<Json>>} */
const commands = {
  async connect ({ clients: specs, concurrency = 20, timeoutMs = 30000, deadlineMs = Infinity }) {
    return connectAll(specs, concurrency, async (spec) => {
      if (state.clients.has(spec.name)) throw new Error('name taken')
      const client = new Client(spec)
      state.clients.set(spec.name, client)
      try {
        await client.connect(timeoutMs)
      } catch (err) {
        state.clients.delete(spec.name)
        await client.close()
        throw err
      }
    }, deadlineMs ?? Infinity)
  },

  async raw ({ clients: specs, concurrency = 50, timeoutMs = 30000 }) {
    return connectAll(specs, concurrency, async (spec) => {
      const receiver = new RawReceiver(spec)
      await receiver.connect(timeoutMs)
      state.raw.set(spec.name, receiver)
    })
  },

  async run ({ clients: names, rate, seconds, warmupSeconds, cursors, renewEvery = 0, drainMs = 240000, stallMs = 30000 }) {
    const clients = fullClients(names)
    const order = interleaved(clients)
    if (order.length === 0) throw new Error('no clients')
    state.latencies = new Samples()
    state.bursts = []
    const sentBefore = { edits: 0 }
    let issued = 0
    let windowSent = 0
    /** @type {GeneratorMeter | null} */
    let meter = null
    let generator = null
    const t0 = performance.now()
    const windowStart = t0 + warmupSeconds * 1000
    const windowEnd = windowStart + seconds * 1000
    let nextRenew = renewEvery > 0 ? windowStart + renewEvery * 500 : Infinity
    await new Promise((resolve) => {
      const tick = () => {
        const now = performance.now()
        if (!state.measuring && meter === null && now >= windowStart) {
          state.measuring = true
          meter = new GeneratorMeter()
          emit({ event: 'window', phase: 'start' })
        }
        if (now >= windowEnd) {
          state.measuring = false
          generator = /** @type {GeneratorMeter} */ (meter).stop()
          emit({ event: 'window', phase: 'end' })
          resolve(undefined)
          return
        }
        const due = Math.floor(rate * (now - t0) / 1000) - issued
        for (let i = 0; i < due; i++) {
          order[issued % order.length].type(cursors)
          issued++
          if (state.measuring) windowSent++
        }
        if (state.measuring && now >= nextRenew) {
          state.bursts.push(new Burst(clients))
          nextRenew += renewEvery * 1000
        }
        setTimeout(tick, 1)
      }
      tick()
    })
    sentBefore.edits = issued
    // Drain: wait while edits still arrive somewhere; give up after `stallMs` without
    // progress (those are lost) or `drainMs` in all (a backlog too long to wait for).
    const drainStart = performance.now()
    let progressAt = drainStart
    let deliveredBefore = state.delivered
    while (state.outstanding > 0) {
      await sleep(5)
      const now = performance.now()
      if (state.delivered !== deliveredBefore) { deliveredBefore = state.delivered; progressAt = now }
      if (now - progressAt > stallMs || now - drainStart > drainMs) break
    }
    const drainedMs = performance.now() - drainStart
    let lost = 0
    let undelivered = 0
    for (const mine of state.pending.values()) {
      for (const edit of mine.values()) { lost += edit.left; undelivered++ }
      mine.clear()
    }
    state.outstanding = 0
    // Every client of a room must end with the same state vector (all edits merged).
    let divergentRooms = 0
    const rooms = new Set(clients.map((c) => c.key))
    for (const key of rooms) {
      const members = [...(state.rooms.get(key) ?? [])]
      const vectors = members.map((c) => Buffer.from(Y.encodeStateVector(c.doc)).toString('base64'))
      if (new Set(vectors).size > 1) divergentRooms++
    }
    const bursts = state.bursts.map((b) => ({ completeMs: b.completeMs, seen: b.seen.size, expected: b.expected }))
    state.bursts = []
    return {
      sent: issued,
      windowSent,
      samples: state.latencies.length,
      lost,
      undelivered,
      divergentRooms,
      drainMs: drainedMs,
      latency: state.latencies.summary(),
      generator,
      bursts
    }
  },

  async flood ({ writers: writerNames, probe: probeName, seconds, warmupSeconds, inflight = 32 }) {
    const writers = fullClients(writerNames)
    const [probe] = fullClients([probeName])
    const sentAt = new Map() // `${clientID}:${clock}` -> t, for edits not yet at the probe
    const probeLatency = new Samples()
    let fullDeliveries = 0
    let sent = 0
    let atProbe = 0
    let measuring = false
    let stopped = false
    let w = 0
    const topUp = () => {
      while (!stopped && sent - atProbe < inflight) {
        const writer = writers[w++ % writers.length]
        sentAt.set(`${writer.doc.clientID}:${Y.getState(writer.doc.store, writer.doc.clientID)}`, performance.now())
        writer.type(false, false)
        sent++
      }
    }
    state.floodProbe = (receiver, clientID, clock) => {
      if (measuring) fullDeliveries++
      if (receiver !== probe) return
      const key = `${clientID}:${clock}`
      const t = sentAt.get(key)
      if (t === undefined) return
      sentAt.delete(key)
      atProbe++
      if (measuring) probeLatency.push(performance.now() - t)
      topUp()
    }
    const rawFrames = () => { let n = 0; for (const r of state.raw.values()) n += r.frames; return n }
    const timer = setInterval(topUp, 5)
    try {
      topUp()
      await sleep(warmupSeconds * 1000)
      measuring = true
      const meter = new GeneratorMeter()
      const frames0 = rawFrames()
      const edits0 = sent
      const t = performance.now()
      emit({ event: 'window', phase: 'start' })
      await sleep(seconds * 1000)
      emit({ event: 'window', phase: 'end' })
      const elapsed = (performance.now() - t) / 1000
      measuring = false
      stopped = true
      const generator = meter.stop()
      const frames = rawFrames() - frames0
      const edits = sent - edits0
      clearInterval(timer)
      const drainStart = performance.now()
      while (sentAt.size > 0 && performance.now() - drainStart < 30000) await sleep(5)
      return {
        seconds: elapsed,
        edits,
        delivered: frames + fullDeliveries,
        rawFrames: frames,
        fullDeliveries,
        notAtProbe: sentAt.size,
        latency: probeLatency.summary(),
        generator
      }
    } finally {
      clearInterval(timer)
      state.floodProbe = null
    }
  },

  async disconnect ({ clients: names }) {
    const full = names === 'all' ? [...state.clients.keys()] : names.filter((n) => state.clients.has(n))
    const raw = names === 'all' ? [...state.raw.keys()] : names.filter((n) => state.raw.has(n))
    const closing = []
    for (const name of full) { closing.push(/** @type {Client} */ (state.clients.get(name)).close()); state.clients.delete(name) }
    for (const name of raw) { closing.push(/** @type {RawReceiver} */ (state.raw.get(name)).close()); state.raw.delete(name) }
    await Promise.all(closing)
    for (const [key, members] of state.rooms) if (members.size === 0) state.rooms.delete(key)
    return { closed: closing.length }
  },

  async memory () {
    const m = process.memoryUsage()
    return { rss: m.rss, heapUsed: m.heapUsed, clients: state.clients.size, raw: state.raw.size }
  },

  async quit () {
    await commands.disconnect({ clients: 'all' })
    setImmediate(() => process.exit(0))
    return {}
  }
}

/** @param {string} line */
const handleLine = (line) => {
  if (!line.trim()) return
  /** @type {Json} */
  let command
  try {
    command = JSON.parse(line)
  } catch (err) {
    emit({ event: 'error', error: `bad command line: ${err}` })
    return
  }
  const { id, cmd, ...args } = command
  const handler = commands[cmd]
  if (handler === undefined) {
    emit({ id, ok: false, error: `unknown command ${cmd}` })
    return
  }
  handler(args).then(
    (result) => emit({ id, ok: true, ...result }),
    (err) => emit({ id, ok: false, error: String(err?.stack ?? err) })
  )
}

process.setMaxListeners(0) // every WebsocketProvider adds an 'exit' listener
process.on('uncaughtException', (err) => emit({ event: 'error', error: String(err?.stack ?? err) }))
const versionOf = (/** @type {string} */ name) =>
  JSON.parse(readFileSync(new URL(`../tests/interop/node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
emit({ event: 'ready', versions: { node: process.version, yjs: versionOf('yjs'), 'y-websocket': versionOf('y-websocket'), ws: versionOf('ws') } })
readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  .on('line', handleLine)
  .on('close', () => { commands.quit({}) })
