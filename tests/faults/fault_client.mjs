/**
 * Node Yjs + y-websocket clients for the fault tests, driven by newline-delimited JSON.
 *
 * Like tests/interop/yclient.mjs (same command/reply/event framing, so
 * node_client.NodeYClients drives it), but each client reconnects by itself
 * the way a browser's y-websocket provider does, and edits are *intents*
 * resolved against the client's own document at the moment they run, so a
 * random edit never lands in the middle of a marker however the document
 * has changed meanwhile. The intents and their results are the ones
 * tests/faults/notebook_ops.py implements for Python clients; keep them equal.
 *
 * Commands:
 *   connect {client, url, room, headers, maxBackoffTime?}
 *       create the client and its provider (it connects and reconnects on its
 *       own); replies at once with {clientID}.
 *   apply {client, op}        run one edit intent -> {result}
 *   snapshot {client, full?}  -> {state, connected, synced, closes: [{code, reason}], terminal}
 *       state = {cells, meta}, plus {outputs, executions} if full
 *   waitSynced {client, timeoutMs}  -> {} once connected and synced, else ok=false
 *   quit
 * Events: ready {versions}, close {client, code, reason}, closed {client, code, reason}
 * (closed: y-websocket stopped reconnecting, e.g. after 4409).
 */

import * as Y from '../interop/node_modules/yjs/dist/yjs.mjs'
import { WebsocketProvider } from '../interop/node_modules/y-websocket/src/y-websocket.js'
import WebSocket from '../interop/node_modules/ws/wrapper.mjs'
import { readFileSync } from 'node:fs'
import readline from 'node:readline'

/** @typedef {Record<string, any>} Json */

/** @param {Json} line */
const emit = (line) => { process.stdout.write(JSON.stringify(line) + '\n') }

const TOKEN = /\[[^[\]]*\]/g

/**
 * The markers of a source, as [start, end) offsets (UTF-16, as Y.Text counts).
 * @param {string} s
 * @return {Array<[number, number]>}
 */
const tokenSpans = (s) => {
  const spans = []
  for (const m of s.matchAll(TOKEN)) spans.push([m.index, m.index + m[0].length])
  return spans
}

/** @param {number} r in [0, 1) @param {number} n */
const pick = (r, n) => Math.min(n - 1, Math.floor(r * n))

/** @param {string} cellId @param {string} cellType @param {string} source @param {Json} metadata */
const makeCell = (cellId, cellType, source, metadata) => {
  const cell = new Y.Map()
  cell.set('id', cellId)
  cell.set('cell_type', cellType)
  cell.set('source', new Y.Text(source))
  const meta = new Y.Map()
  for (const [k, v] of Object.entries(metadata)) meta.set(k, v)
  cell.set('metadata', meta)
  if (cellType === 'code') {
    cell.set('outputs', new Y.Array())
    cell.set('execution_count', null)
  }
  return cell
}

/** @param {Y.Map<any>} cell */
const cellMeta = (cell) => /** @type {Y.Map<any>} */ (cell.get('metadata'))

class Client {
  /** @param {string} name @param {Json} args */
  constructor (name, args) {
    this.name = name
    this.headers = args.headers ?? {}
    this.doc = new Y.Doc()
    /** @type {Array<{code: number, reason: string}>} */
    this.closes = []
    this.terminal = null
    const client = this
    class HeaderWebSocket extends WebSocket {
      /** @param {string} url @param {string[]} protocols */
      constructor (url, protocols) {
        super(url, protocols, { headers: client.headers })
        this.on('error', () => {}) // failed connects are retried by the provider
      }
    }
    this.provider = new WebsocketProvider(args.url, args.room, this.doc, {
      connect: true,
      disableBc: true,
      maxBackoffTime: args.maxBackoffTime ?? 1000,
      WebSocketPolyfill: /** @type {any} */ (HeaderWebSocket)
    })
    this.provider.on('connection-close', (event) => {
      if (event == null) return
      const info = { code: event.code, reason: String(event.reason ?? '') }
      this.closes.push(info)
      emit({ event: 'close', client: name, ...info })
    })
    this.provider.on('closed', (info) => {
      this.terminal = info
      emit({ event: 'closed', client: name, ...info })
    })
  }

  /** @return {Y.Array<Y.Map<any>>} */
  get cells () { return this.doc.getArray('cells') }

  /** @return {Y.Map<any>} */
  get nbMeta () { return this.doc.getMap('meta').get('metadata') }

  /** @param {Json} op */
  apply (op) {
    let result = null
    this.doc.transact(() => { result = this.applyInTransaction(op) })
    return result
  }

  /** @param {Json} op */
  applyInTransaction (op) {
    const cells = this.cells
    const n = cells.length
    switch (op.kind) {
      case 'insert_token': {
        if (n === 0) return { skipped: 'no cells' }
        const cell = cells.get(pick(op.cell, n))
        const text = cell.get('source')
        const bounds = [0, ...tokenSpans(text.toString()).map(([, end]) => end)]
        text.insert(bounds[pick(op.pos, bounds.length)], op.token)
        return { cell_id: cell.get('id'), inc: cellMeta(cell).get('inc') ?? null, token: op.token }
      }
      case 'delete_tokens': {
        if (n === 0) return { skipped: 'no cells' }
        const cell = cells.get(pick(op.cell, n))
        const text = cell.get('source')
        const s = text.toString()
        const spans = tokenSpans(s)
        if (spans.length === 0) return { skipped: 'no markers' }
        const first = pick(op.pos, spans.length)
        const last = Math.min(spans.length, first + op.count) - 1
        const [start] = spans[first]
        const [, end] = spans[last]
        text.delete(start, end - start)
        return { cell_id: cell.get('id'), tokens: spans.slice(first, last + 1).map(([a, b]) => s.slice(a, b)) }
      }
      case 'insert_cell': {
        const index = Math.min(n, Math.floor(op.index * (n + 1)))
        cells.insert(index, [makeCell(op.cell_id, op.cell_type, op.token, { inc: op.inc, owner: op.owner })])
        return { cell_id: op.cell_id, inc: op.inc, token: op.token }
      }
      case 'delete_cell':
      case 'move_cell': {
        const own = []
        for (let i = 0; i < n; i++) if (cellMeta(cells.get(i)).get('owner') === op.owner) own.push(i)
        if (own.length === 0) return { skipped: 'no own cells' }
        const index = own[pick(op.pick, own.length)]
        const cell = cells.get(index)
        const source = cell.get('source').toString()
        const meta = cellMeta(cell).toJSON()
        const tokens = tokenSpans(source).map(([a, b]) => source.slice(a, b))
        const metaMarkers = Object.keys(meta).filter((k) => k.startsWith('m_')).map((k) => k.slice(2))
        const base = { cell_id: cell.get('id'), old_inc: meta.inc ?? null, tokens, meta_markers: metaMarkers }
        if (op.kind === 'delete_cell') {
          cells.delete(index, 1)
          return base
        }
        // Yjs 13 has no move: delete and insert a copy (as JupyterLab does).
        const copy = makeCell(cell.get('id'), cell.get('cell_type'), source, { ...meta, inc: op.new_inc })
        cells.delete(index, 1)
        cells.insert(Math.min(n - 1, Math.floor(op.to * n)), [copy])
        return { ...base, new_inc: op.new_inc }
      }
      case 'cell_meta': {
        if (n === 0) return { skipped: 'no cells' }
        const cell = cells.get(pick(op.cell, n))
        cellMeta(cell).set('m_' + op.token, op.token)
        return { cell_id: cell.get('id'), inc: cellMeta(cell).get('inc') ?? null, token: op.token }
      }
      case 'nb_meta':
        this.nbMeta.set('m_' + op.token, op.token)
        return { token: op.token }
      case 'nb_meta_del': {
        const own = [...this.nbMeta.keys()].filter((k) => k.startsWith(`m_[${op.author}.`)).sort()
        if (own.length === 0) return { skipped: 'no own keys' }
        const key = own[pick(op.pick, own.length)]
        this.nbMeta.delete(key)
        return { token: key.slice(2) }
      }
      case 'shared_meta':
        this.nbMeta.set('shared', op.token)
        return { token: op.token }
      default:
        throw new Error(`unknown op ${op.kind}`)
    }
  }

  /** @param {boolean} full also the outputs of code cells and the executions map */
  snapshot (full) {
    const cells = this.cells.toArray().map((cell) => ({
      id: cell.get('id'),
      type: cell.get('cell_type'),
      source: cell.get('source')?.toString() ?? null,
      metadata: cellMeta(cell)?.toJSON() ?? {}
    }))
    const meta = {}
    const nbMeta = this.nbMeta
    if (nbMeta !== undefined) {
      for (const [k, v] of nbMeta.entries()) if (k.startsWith('m_') || k === 'shared') meta[k] = v
    }
    if (!full) return { cells, meta }
    /** @type {Json} */
    const outputs = {}
    for (const cell of this.cells.toArray()) {
      const cellOutputs = cell.get('outputs')
      if (cellOutputs instanceof Y.Array) {
        outputs[cell.get('id')] = { execution_count: cell.get('execution_count') ?? null, outputs: cellOutputs.toJSON() }
      }
    }
    return { cells, meta, outputs, executions: this.doc.getMap('executions').toJSON() }
  }
}

/** @type {Map<string, Client>} */
const clients = new Map()

/** @param {Json} args */
const getClient = (args) => {
  const client = clients.get(args.client)
  if (client === undefined) throw new Error(`unknown client ${JSON.stringify(args.client)}`)
  return client
}

/** @type {Record<string, (args: Json) => Json | Promise<Json>>} */
const commands = {
  connect (args) {
    if (clients.has(args.client)) throw new Error(`${args.client} exists`)
    const client = new Client(args.client, args)
    clients.set(args.client, client)
    return { clientID: client.doc.clientID }
  },
  apply (args) {
    return { result: getClient(args).apply(args.op) }
  },
  snapshot (args) {
    const c = getClient(args)
    return {
      state: c.snapshot(args.full === true),
      connected: c.provider.wsconnected,
      synced: c.provider.synced,
      closes: c.closes,
      terminal: c.terminal
    }
  },
  async waitSynced (args) {
    const c = getClient(args)
    const deadline = Date.now() + (args.timeoutMs ?? 10000)
    while (!(c.provider.wsconnected && c.provider.synced)) {
      if (Date.now() > deadline) return { ok: false, error: 'not synced', connected: c.provider.wsconnected }
      await new Promise((resolve) => setTimeout(resolve, 20)) // poll, bounded by timeoutMs
    }
    return {}
  },
  quit () {
    for (const client of clients.values()) {
      client.provider.destroy()
      client.doc.destroy()
    }
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
    (err) => emit({ id, ok: false, error: err instanceof Error ? err.stack ?? err.message : String(err) })
  )
}

process.setMaxListeners(0)
/** @param {string} name */
const versionOf = (name) =>
  JSON.parse(readFileSync(new URL(`../interop/node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
emit({ event: 'ready', versions: { yjs: versionOf('yjs'), 'y-websocket': versionOf('y-websocket'), ws: versionOf('ws') } })
readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
  .on('line', handleLine)
  .on('close', () => commands.quit({}))
