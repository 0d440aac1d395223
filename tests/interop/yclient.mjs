/**
 * Many y-websocket clients in one Node process, driven by newline-delimited JSON.
 *
 * Each client is one `Y.Doc` + one `WebsocketProvider` (y-websocket) holding a
 * JupyterLab YNotebook: `doc.getArray('cells')` of Y.Maps (`id`, `cell_type`,
 * `source` Y.Text, `metadata` Y.Map, and for code cells `outputs` Y.Array and
 * `execution_count`), `doc.getMap('meta')`, `doc.getMap('state')`.
 *
 * Protocol. Every stdin line is one command `{"id": ..., "cmd": NAME, ...args}`.
 * Every command gets exactly one stdout line `{"id": ..., "ok": true, ...result}`
 * or `{"id": ..., "ok": false, "error": TEXT, ...detail}`. Commands run
 * concurrently (a pending `waitFor` does not block others); the synchronous part
 * of each (the edit itself) runs in the order the lines arrive.
 * Other stdout lines are events, `{"event": NAME, ...}`:
 *   ready {versions}                      once, at start
 *   status {client, status}               'connecting' | 'connected' | 'disconnected'
 *   sync {client, synced}                 provider sync state changed
 *   close {client, code, reason}          the server closed the socket (or it failed)
 *   closed {client, code, reason}         y-websocket gave up reconnecting (4400-4499)
 *   malformed {client, error}             an incoming frame could not be decoded
 *
 * Commands (edits are refused until the client's first sync completed, so a
 * client never writes into a document it has not received yet):
 *   connect {client, url, room, headers?, params?, awarenessUser?, timeoutMs?}
 *       Creates the client (or reconnects a disconnected one, keeping its doc).
 *       url is the server prefix (ws://127.0.0.1:PORT/api/rooms), room the
 *       notebook id; headers are sent with the upgrade request (e.g.
 *       {"Authorization": "token T"}); awarenessUser becomes the `user` field of
 *       the local awareness state. Replies {clientID} once synced; if the socket
 *       closes first or the timeout passes it stops reconnecting and fails with
 *       {clientID, closeCode, closeReason, httpStatus, socketError}.
 *   disconnect {client}                   close the socket; doc and stats are kept
 *   insertText {client, cell, index, text}       cell = index in the cells array
 *   deleteText {client, cell, index, length}
 *   insertCell {client, index, cellId?, source?, cellType?}   -> {cellId}
 *   deleteCell {client, index}
 *   setCursor {client, cell, anchor, head}       awareness `cursor` (+ `user`)
 *   renewAwareness {clients: [names] | "all"}    each bumps awareness `renew`
 *       in the same tick -> {renewed}
 *   randomEdits {client, count, seed}     seeded text/cell edits -> {applied}
 *   state {client}        -> {clientID, synced, cells: [cell JSON], meta, awareness: {clientID: state}}
 *   stats {client}        -> {stats}; stats {clients: [names] | "all"} -> {stats: {name: stats}}
 *       stats = {clientID, status, synced, syncEvents, messages: {sync, awareness,
 *       auth, queryAwareness, unknown}, awarenessEntries, awarenessSent, echoes,
 *       ownIdForeignClock, remote: {clientID: {distinct, duplicates}}, closes: [{code, reason}],
 *       permissionDenied, roles: [role announced by the server, in order]}
 *       echoes = incoming awareness entries for this client's own clientID with a
 *       clock this client sent itself; ownIdForeignClock = own clientID, clock it
 *       never sent; remote counts distinct (clientID, clock) pairs and repeats.
 *   resetStats {clients: [names] | "all"}
 *   waitFor {client, cellSourceContains?, cell?, cellCount?, awarenessCount?,
 *            awarenessMatches?, awarenessWith?, minStats?, synced?, timeoutMs?}
 *       Replies when every given condition holds, or fails with {error: 'timeout', seen}:
 *       cellSourceContains: text in cell `cell`, or in any cell; cellCount: exact;
 *       awarenessCount: exact number of awareness states the client sees, its own
 *       included; awarenessMatches {clientID, fields}: that client's awareness
 *       state has these fields (deep-equal); awarenessWith {fields, count}: exactly
 *       `count` awareness states (its own included) have these fields (deep-equal);
 *       minStats {name: n}: numeric stats
 *       (e.g. echoes, awarenessEntries) are at least n; synced: true | false.
 *   quit                                  destroy every client, reply, exit
 *       (end of stdin does the same, dropping replies still pending)
 */

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'
import * as decoding from 'lib0/decoding'
import { equalityDeep } from 'lib0/function'
import * as prng from 'lib0/prng'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import readline from 'node:readline'

const MESSAGE_TYPES = ['sync', 'awareness', 'auth', 'queryAwareness']
const DEFAULT_TIMEOUT_MS = 10000

/** @typedef {Record<string, any>} Json */
/** @typedef {{ code: number, reason: string }} CloseInfo */

/** @param {Json} line */
const emit = (line) => { process.stdout.write(JSON.stringify(line) + '\n') }

/**
 * Decode the entries of one awareness update (y-protocols/awareness encoding).
 * @param {Uint8Array} update
 * @return {Array<{ clientID: number, clock: number }>}
 */
const awarenessEntries = (update) => {
  const decoder = decoding.createDecoder(update)
  const entries = []
  for (let n = decoding.readVarUint(decoder); n > 0; n--) {
    const clientID = decoding.readVarUint(decoder)
    const clock = decoding.readVarUint(decoder)
    decoding.readVarString(decoder) // JSON state, or "null" on removal
    entries.push({ clientID, clock })
  }
  return entries
}

/**
 * Split a y-websocket frame into its message type and, for awareness, its entries;
 * for auth, its subtype (0 permission denied, 1 collab-server's role) and text.
 * @param {Uint8Array} frame
 * @return {{ type: string, entries: Array<{ clientID: number, clock: number }>, auth: { subtype: number, text: string } | null }}
 */
const decodeFrame = (frame) => {
  const decoder = decoding.createDecoder(frame)
  const type = MESSAGE_TYPES[decoding.readVarUint(decoder)] ?? 'unknown'
  const entries = type === 'awareness' ? awarenessEntries(decoding.readVarUint8Array(decoder)) : []
  const auth = type === 'auth'
    ? { subtype: decoding.readVarUint(decoder), text: decoding.readVarString(decoder) }
    : null
  return { type, entries, auth }
}

const freshStats = () => ({
  syncEvents: 0,
  /** @type {Record<string, number>} */
  messages: { sync: 0, awareness: 0, auth: 0, queryAwareness: 0, unknown: 0 },
  awarenessEntries: 0,
  awarenessSent: 0,
  echoes: 0,
  ownIdForeignClock: 0,
  /** @type {Map<number, { clocks: Set<number>, duplicates: number }>} */
  remote: new Map(),
  /** @type {Array<CloseInfo>} */
  closes: [],
  permissionDenied: 0,
  /** @type {string[]} every role the server announced (auth subtype 1), in order */
  roles: []
})

/** One named client: a YNotebook doc, its provider, and what it has seen on the wire. */
class Client {
  /**
   * @param {string} name
   * @param {Json} args the `connect` command
   */
  constructor (name, args) {
    this.name = name
    /** @type {Record<string, string>} */
    this.headers = args.headers ?? {}
    this.user = args.awarenessUser ?? { name }
    this.doc = new Y.Doc()
    this.stats = freshStats()
    /** @type {Set<number>} awareness clocks this client sent for its own clientID */
    this.sentClocks = new Set()
    this.hasSynced = false
    this.status = 'disconnected'
    /** @type {CloseInfo | null} first close of the current connect attempt */
    this.attemptClose = null
    /** @type {string | null} */
    this.socketError = null
    /** @type {Set<() => boolean>} conditions re-checked after every change */
    this.waiters = new Set()
    this.provider = new WebsocketProvider(args.url, args.room, this.doc, {
      connect: false,
      // Same-process clients would otherwise sync through lib0's BroadcastChannel
      // (Node has one) and never need the server.
      disableBc: true,
      params: args.params ?? {},
      WebSocketPolyfill: /** @type {any} */ (this.socketClass())
    })
    this.provider.awareness.setLocalState({ user: this.user })
    this.provider.on('status', ({ status }) => {
      this.status = status
      emit({ event: 'status', client: name, status })
      this.notify()
    })
    this.provider.on('sync', (synced) => {
      this.stats.syncEvents++
      if (synced) this.hasSynced = true
      emit({ event: 'sync', client: name, synced })
      this.notify()
    })
    this.provider.on('connection-close', (event) => {
      if (event == null) return // closed locally
      const info = { code: event.code, reason: String(event.reason ?? '') }
      this.stats.closes.push(info)
      if (this.attemptClose === null && !this.provider.synced) this.attemptClose = info
      emit({ event: 'close', client: name, ...info })
      this.notify()
    })
    this.provider.on('closed', (info) => emit({ event: 'closed', client: name, ...info }))
    this.doc.on('update', () => this.notify())
    this.provider.awareness.on('change', () => this.notify())
  }

  /** A `ws` subclass that sends this client's headers and taps its frames. */
  socketClass () {
    const client = this
    return class TappedWebSocket extends WebSocket {
      /**
       * @param {string} url
       * @param {string[]} protocols
       */
      constructor (url, protocols) {
        super(url, protocols, { headers: client.headers })
        // Registered before the provider's onmessage, so stats are current when it applies a frame.
        this.addEventListener('message', (event) => client.recordIncoming(new Uint8Array(/** @type {ArrayBuffer} */ (event.data))))
        this.on('error', (err) => { client.socketError = err.message })
      }

      /** @param {any} data @param {...any} rest */
      send (data, ...rest) {
        client.recordOutgoing(new Uint8Array(data))
        super.send(data, ...rest)
      }
    }
  }

  /** @param {Uint8Array} frame */
  recordIncoming (frame) {
    // Re-check waiters once the provider has applied the frame too (it listens after us).
    queueMicrotask(() => this.notify())
    let decoded
    try {
      decoded = decodeFrame(frame)
    } catch (err) {
      emit({ event: 'malformed', client: this.name, error: String(err) })
      return
    }
    this.stats.messages[decoded.type]++
    if (decoded.auth?.subtype === 0) this.stats.permissionDenied++
    if (decoded.auth?.subtype === 1) this.stats.roles.push(JSON.parse(decoded.auth.text).role)
    for (const { clientID, clock } of decoded.entries) {
      this.stats.awarenessEntries++
      if (clientID === this.doc.clientID) {
        if (this.sentClocks.has(clock)) this.stats.echoes++
        else this.stats.ownIdForeignClock++
        continue
      }
      let tally = this.stats.remote.get(clientID)
      if (tally === undefined) this.stats.remote.set(clientID, (tally = { clocks: new Set(), duplicates: 0 }))
      if (tally.clocks.has(clock)) tally.duplicates++
      else tally.clocks.add(clock)
    }
  }

  /** @param {Uint8Array} frame */
  recordOutgoing (frame) {
    const { type, entries } = decodeFrame(frame)
    if (type !== 'awareness') return
    this.stats.awarenessSent++
    for (const { clientID, clock } of entries) {
      if (clientID === this.doc.clientID) this.sentClocks.add(clock)
    }
  }

  notify () {
    for (const waiter of this.waiters) if (waiter()) this.waiters.delete(waiter)
  }

  /**
   * Resolve true once `check()` holds, false after `timeoutMs`.
   * @param {() => boolean} check
   * @param {number} timeoutMs
   * @return {Promise<boolean>}
   */
  until (check, timeoutMs) {
    if (check()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => { this.waiters.delete(waiter); resolve(false) }, timeoutMs)
      const waiter = () => {
        if (!check()) return false
        clearTimeout(timer)
        resolve(true)
        return true
      }
      this.waiters.add(waiter)
    })
  }

  /** @return {Y.Array<Y.Map<any>>} */
  get cells () { return this.doc.getArray('cells') }

  /** @param {number} index */
  cell (index) {
    const cell = this.cells.get(index)
    if (cell === undefined) throw new Error(`${this.name}: no cell at index ${index} (${this.cells.length} cells)`)
    return cell
  }

  /** @param {number} index @return {Y.Text} */
  source (index) { return this.cell(index).get('source') }

  assertSynced () {
    if (!this.hasSynced) throw new Error(`${this.name}: not synced yet, refusing to write`)
  }

  /** @param {Json} fields merged into the local awareness state */
  setAwareness (fields) {
    this.provider.awareness.setLocalState({ ...this.provider.awareness.getLocalState(), ...fields })
  }

  statsJson () {
    const s = this.stats
    /** @type {Record<string, { distinct: number, duplicates: number }>} */
    const remote = {}
    for (const [id, tally] of s.remote) remote[id] = { distinct: tally.clocks.size, duplicates: tally.duplicates }
    return {
      clientID: this.doc.clientID,
      status: this.status,
      synced: this.provider.synced,
      syncEvents: s.syncEvents,
      messages: s.messages,
      awarenessEntries: s.awarenessEntries,
      awarenessSent: s.awarenessSent,
      echoes: s.echoes,
      ownIdForeignClock: s.ownIdForeignClock,
      remote,
      closes: s.closes,
      permissionDenied: s.permissionDenied,
      roles: s.roles
    }
  }

  destroy () {
    this.provider.destroy()
    this.doc.destroy()
  }
}

/**
 * Build a YNotebook cell.
 * @param {string} cellId
 * @param {string} cellType 'code' | 'markdown' | 'raw'
 * @param {string} source
 */
const makeCell = (cellId, cellType, source) => {
  const cell = new Y.Map()
  cell.set('id', cellId)
  cell.set('cell_type', cellType)
  cell.set('source', new Y.Text(source))
  cell.set('metadata', new Y.Map())
  if (cellType === 'code') {
    cell.set('outputs', new Y.Array())
    cell.set('execution_count', null)
  }
  return cell
}

/** @type {Map<string, Client>} */
const clients = new Map()

/** @param {Json} args */
const getClient = (args) => {
  const client = clients.get(args.client)
  if (client === undefined) throw new Error(`unknown client ${JSON.stringify(args.client)}`)
  return client
}

/** @param {Json} args @return {Client} */
const writableClient = (args) => {
  const client = getClient(args)
  client.assertSynced()
  return client
}

/** @param {string[] | 'all'} names @return {Client[]} */
const namedClients = (names) =>
  names === 'all' ? [...clients.values()] : names.map((name) => getClient({ client: name }))

/** @param {Client} client */
const seen = (client) => ({
  synced: client.provider.synced,
  cells: client.cells.toArray().map((cell) => cell.get('source')?.toString()),
  awarenessCount: client.provider.awareness.getStates().size
})

/**
 * One seeded random edit: mostly typing and deleting text, sometimes a cell.
 * @param {Client} client
 * @param {prng.PRNG} gen
 */
const randomEdit = (client, gen) => {
  const cells = client.cells
  const roll = prng.real53(gen)
  if (cells.length === 0 || roll < 0.05) {
    cells.insert(prng.uint32(gen, 0, cells.length), [makeCell(randomUUID(), 'code', prng.word(gen, 1, 8))])
  } else if (roll < 0.08 && cells.length > 1) {
    cells.delete(prng.uint32(gen, 0, cells.length - 1), 1)
  } else {
    const text = client.source(prng.uint32(gen, 0, cells.length - 1))
    const at = prng.uint32(gen, 0, text.length)
    if (roll < 0.35 && at < text.length) text.delete(at, Math.min(prng.uint32(gen, 1, 5), text.length - at))
    else text.insert(at, prng.word(gen, 1, 6))
  }
}

/** @type {Record<string, (args: Json) => Json | Promise<Json>>} */
const commands = {
  async connect (args) {
    let client = clients.get(args.client)
    if (client === undefined) {
      client = new Client(args.client, args)
      clients.set(args.client, client)
    } else {
      if (client.provider.wsconnected || client.provider.wsconnecting) throw new Error(`${args.client} is already connected`)
      if (args.headers !== undefined) client.headers = args.headers
    }
    const c = client
    c.attemptClose = null
    c.socketError = null
    c.provider.connect()
    const synced = await c.until(() => c.provider.synced || c.attemptClose !== null, args.timeoutMs ?? DEFAULT_TIMEOUT_MS)
    if (synced && c.provider.synced) return { clientID: c.doc.clientID }
    c.provider.disconnect() // stop y-websocket's reconnect loop
    const close = /** @type {CloseInfo | null} */ (c.attemptClose) // (set by the close listener)
    const httpStatus = /Unexpected server response: (\d+)/.exec(c.socketError ?? '')?.[1]
    return {
      ok: false,
      error: synced ? 'connection closed before sync' : 'timeout waiting for sync',
      clientID: c.doc.clientID,
      closeCode: close?.code ?? null,
      closeReason: close?.reason ?? null,
      httpStatus: httpStatus === undefined ? null : Number(httpStatus),
      socketError: c.socketError
    }
  },
  disconnect (args) {
    getClient(args).provider.disconnect()
    return {}
  },
  insertText (args) {
    writableClient(args).source(args.cell).insert(args.index, args.text)
    return {}
  },
  deleteText (args) {
    writableClient(args).source(args.cell).delete(args.index, args.length)
    return {}
  },
  insertCell (args) {
    const cellId = args.cellId ?? randomUUID()
    writableClient(args).cells.insert(args.index, [makeCell(cellId, args.cellType ?? 'code', args.source ?? '')])
    return { cellId }
  },
  deleteCell (args) {
    const client = writableClient(args)
    client.cell(args.index)
    client.cells.delete(args.index, 1)
    return {}
  },
  setCursor (args) {
    const client = getClient(args)
    client.setAwareness({ user: client.user, cursor: { cell: args.cell, anchor: args.anchor, head: args.head } })
    return {}
  },
  renewAwareness (args) {
    const targets = namedClients(args.clients ?? 'all')
    for (const client of targets) {
      client.setAwareness({ renew: (client.provider.awareness.getLocalState()?.renew ?? 0) + 1 })
    }
    return { renewed: targets.length }
  },
  randomEdits (args) {
    const client = writableClient(args)
    const gen = prng.create(args.seed ?? 1)
    for (let i = 0; i < args.count; i++) randomEdit(client, gen)
    return { applied: args.count }
  },
  state (args) {
    const client = getClient(args)
    return {
      clientID: client.doc.clientID,
      synced: client.provider.synced,
      cells: client.cells.toJSON(),
      meta: client.doc.getMap('meta').toJSON(),
      awareness: Object.fromEntries(client.provider.awareness.getStates())
    }
  },
  stats (args) {
    if (args.client !== undefined) return { stats: getClient(args).statsJson() }
    return { stats: Object.fromEntries(namedClients(args.clients ?? 'all').map((c) => [c.name, c.statsJson()])) }
  },
  resetStats (args) {
    for (const client of namedClients(args.clients ?? 'all')) client.stats = freshStats()
    return {}
  },
  async waitFor (args) {
    const client = getClient(args)
    /** @type {Array<() => boolean>} */
    const conditions = []
    if (args.synced !== undefined) conditions.push(() => client.provider.synced === args.synced)
    if (args.cellCount !== undefined) conditions.push(() => client.cells.length === args.cellCount)
    if (args.awarenessCount !== undefined) {
      conditions.push(() => client.provider.awareness.getStates().size === args.awarenessCount)
    }
    if (args.awarenessMatches !== undefined) {
      const { clientID, fields } = args.awarenessMatches
      conditions.push(() => {
        const state = client.provider.awareness.getStates().get(clientID)
        return state !== undefined && Object.entries(fields).every(([key, value]) => equalityDeep(state[key], value))
      })
    }
    if (args.awarenessWith !== undefined) {
      const { fields, count } = args.awarenessWith
      conditions.push(() => {
        let matching = 0
        for (const state of client.provider.awareness.getStates().values()) {
          if (Object.entries(fields).every(([key, value]) => equalityDeep(state[key], value))) matching++
        }
        return matching === count
      })
    }
    if (args.minStats !== undefined) {
      conditions.push(() => {
        /** @type {Json} */
        const stats = client.statsJson()
        return Object.entries(args.minStats).every(([key, min]) => stats[key] >= min)
      })
    }
    if (args.cellSourceContains !== undefined) {
      conditions.push(() => {
        const sources = args.cell !== undefined
          ? [client.cells.get(args.cell)?.get('source')]
          : client.cells.toArray().map((cell) => cell.get('source'))
        return sources.some((text) => text !== undefined && text.toString().includes(args.cellSourceContains))
      })
    }
    const held = await client.until(() => conditions.every((holds) => holds()), args.timeoutMs ?? DEFAULT_TIMEOUT_MS)
    return held ? {} : { ok: false, error: 'timeout', seen: seen(client) }
  },
  quit () {
    for (const client of clients.values()) client.destroy()
    clients.clear()
    setImmediate(() => process.exit(0))
    return {}
  }
}

/** @param {string} line */
const handleLine = (line) => {
  if (line.trim() === '') return
  /** @type {Json} */
  let command
  try {
    command = JSON.parse(line)
  } catch (err) {
    emit({ id: null, ok: false, error: `invalid JSON: ${err}` })
    return
  }
  const { id, cmd } = command
  const handler = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined
  if (handler === undefined) {
    emit({ id, ok: false, error: `unknown command ${JSON.stringify(cmd)}` })
    return
  }
  let result
  try {
    result = Promise.resolve(handler(command))
  } catch (err) {
    result = Promise.reject(err)
  }
  result.then(
    (reply) => emit({ id, ok: true, ...reply }),
    (err) => emit({ id, ok: false, error: err instanceof Error ? err.message : String(err) })
  )
}

// Every provider registers a process 'exit' handler; many clients are expected.
process.setMaxListeners(0)
/** @param {string} name */
const versionOf = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
emit({ event: 'ready', versions: { yjs: versionOf('yjs'), 'y-websocket': versionOf('y-websocket'), ws: versionOf('ws') } })
readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  .on('line', handleLine)
  .on('close', () => commands.quit({}))
