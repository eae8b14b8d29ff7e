// Preloaded with `node --require ./loopback-only.cjs ...` by
// TestMCPInteropServerEverything. server-everything's HTTP transports call
// express's app.listen(PORT), which binds every interface and has no host
// option: this makes every TCP listen bind 127.0.0.1 instead, and prints
// the bound address to stderr as "agentd-loopback-listening 127.0.0.1:PORT"
// (so PORT=0 can be used and the test learns the port).
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const cb = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  let options;
  const first = args[0];
  if (first === undefined || typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    options = { port: first === undefined ? 0 : Number(first) };
    if (typeof args[2] === 'number') options.backlog = args[2];
  } else if (first !== null && typeof first === 'object' && 'port' in first) {
    options = { ...first };
  } else {
    // A Unix socket path, a handle or a file descriptor: no TCP to pin.
    if (cb) args.push(cb);
    return listen.apply(this, args);
  }
  options.host = '127.0.0.1';
  this.once('listening', () => {
    const a = this.address();
    process.stderr.write(`agentd-loopback-listening ${a.address}:${a.port}\n`);
  });
  return cb ? listen.call(this, options, cb) : listen.call(this, options);
};
