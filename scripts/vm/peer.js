// placeholder
'use strict';
const net = require('node:net');
const s = net.createServer((c) => c.end()).listen(Number(process.argv[2]), '127.0.0.1', () => console.log('peer ready'));
process.on('SIGTERM', () => process.exit(0));
