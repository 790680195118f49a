// Runs dynalite's own command line with two repairs:
// 1. The server stays up when a client dies mid-request. dynalite rethrows a request's 'error' event
//    (index.js: `req.on('error', err => { throw err })`), so a batch killed with SIGKILL while sending a
//    request would take the whole database down.
// 2. UpdateTable adds and drops global secondary indexes on a live table, as DynamoDB does (dynalite
//    accepts the request and ignores it, and refuses it on an on-demand table): a new index is made
//    CREATING, every item is indexed under its own lock (writes meanwhile index themselves), then it is
//    ACTIVE. So `ocrlab adopt` and `ocrlab db migrate` work in place on the local database too.
// usage: node dynalite_launcher.js /path/to/dynalite/cli.js [dynalite options]
'use strict'
const path = require('path')

const ABORTED = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED'])
process.on('uncaughtException', (err) => {
  if (err && ABORTED.has(err.code)) {
    console.error(`${new Date().toISOString()} a client went away mid-request (${err.code}); still serving`)
    return
  }
  console.error(err)
  process.exit(1)
})

const cli = process.argv[2]
const root = path.dirname(cli)
const db = require(path.join(root, 'db'))

// On-demand tables give no throughput for a new index (DynamoDB does not ask for one there), and the
// definitions of a new index's key attributes come with the request (dynalite's rules drop them).
const updateRules = require(path.join(root, 'validations', 'updateTable.js')).types
delete updateRules.GlobalSecondaryIndexUpdates.children.children.Create.children.ProvisionedThroughput.notNull
updateRules.AttributeDefinitions = Object.assign({},
  require(path.join(root, 'validations', 'createTable.js')).types.AttributeDefinitions, { notNull: undefined })
delete updateRules.AttributeDefinitions.notNull

const actionPath = require.resolve(path.join(root, 'actions', 'updateTable.js'))
const updateThroughput = require(actionPath)
require.cache[actionPath].exports = function updateTable (store, data, cb) {
  const changes = (data.GlobalSecondaryIndexUpdates || []).filter((u) => u.Create || u.Delete)
  if (!changes.length) return updateThroughput(store, data, cb)
  const name = data.TableName
  store.tableDb.lock(name, (release) => {
    const done = release(cb)
    store.getTable(name, false, (err, table) => {
      if (err) return done(err)
      const indexes = table.GlobalSecondaryIndexes || []
      const created = []
      for (const change of changes) {
        if (change.Delete) {
          const at = indexes.findIndex((i) => i.IndexName === change.Delete.IndexName)
          if (at < 0) return done(db.validationError(`Requested resource not found: Index: ${change.Delete.IndexName}`))
          indexes.splice(at, 1)
          continue
        }
        const spec = change.Create
        if (indexes.some((i) => i.IndexName === spec.IndexName)) {
          return done(db.validationError(`One or more parameter values were invalid: Index ${spec.IndexName} already exists`))
        }
        const index = {
          IndexName: spec.IndexName, KeySchema: spec.KeySchema, Projection: spec.Projection,
          IndexStatus: 'CREATING', Backfilling: true, IndexSizeBytes: 0, ItemCount: 0,
          IndexArn: `${table.TableArn}/index/${spec.IndexName}`,
          ProvisionedThroughput: Object.assign({ ReadCapacityUnits: 0, WriteCapacityUnits: 0, NumberOfDecreasesToday: 0 },
            spec.ProvisionedThroughput || {}),
        }
        indexes.push(index)
        created.push(index)
      }
      const known = new Set((table.AttributeDefinitions || []).map((a) => a.AttributeName))
      for (const definition of data.AttributeDefinitions || []) {
        if (!known.has(definition.AttributeName)) table.AttributeDefinitions.push(definition)
      }
      table.GlobalSecondaryIndexes = indexes
      store.tableDb.put(name, table, (err) => {
        if (err) return done(err)
        const dropped = changes.filter((c) => c.Delete).map((c) => c.Delete.IndexName)
        dropped.forEach((index) => store.deleteIndexDb('Global', name, index, () => {}))
        done(null, { TableDescription: table })
        if (created.length) backfill(store, name, created)
      })
    })
  })
}

function backfill (store, name, created) {
  const itemDb = store.getItemDb(name)
  const fail = (err) => console.error(`indexing ${name} failed: ${err && (err.stack || err)}`)
  db.lazy(itemDb.createKeyStream(), fail).join((keys) => {
    let next = 0
    const one = () => {
      if (next >= keys.length) return finish()
      const key = keys[next++]
      itemDb.lock(key, (release) => {
        const step = release(() => setImmediate(one))
        itemDb.get(key, (err, item) => {
          if (err) return step()  // deleted meanwhile
          store.getTable(name, false, (err, table) => {
            if (err) return step()
            const only = Object.assign({}, table, { LocalSecondaryIndexes: [],
              GlobalSecondaryIndexes: (table.GlobalSecondaryIndexes || []).filter((i) => created.some((c) => c.IndexName === i.IndexName)) })
            try {
              db.updateIndexes(store, only, null, item, (err) => { if (err) fail(err); step() })
            } catch (err) {  // an item the index cannot hold: leave it out, as DynamoDB would
              fail(err)
              step()
            }
          })
        })
      })
    }
    const finish = () => store.tableDb.lock(name, (release) => {
      const done = release(() => {})
      store.getTable(name, false, (err, table) => {
        if (err) return done(fail(err))
        for (const index of table.GlobalSecondaryIndexes || []) {
          if (created.some((c) => c.IndexName === index.IndexName)) {
            index.IndexStatus = 'ACTIVE'
            delete index.Backfilling
          }
        }
        store.tableDb.put(name, table, (err) => done(err && fail(err)))
      })
    })
    one()
  })
}

process.argv.splice(1, 2, cli)  // dynalite's cli.js reads its options from process.argv.slice(2)
require(cli)
