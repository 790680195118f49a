// Runs dynalite's own command line, but keeps the server up when a client dies mid-request.
// dynalite rethrows a request's 'error' event (index.js: `req.on('error', err => { throw err })`),
// so a batch killed with SIGKILL while sending a request would take the whole database down.
// usage: node dynalite_launcher.js /path/to/dynalite/cli.js [dynalite options]
'use strict'
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
process.argv.splice(1, 2, cli)  // dynalite's cli.js reads its options from process.argv.slice(2)
require(cli)
