// The replicas benchmark's balancer, in a process of its own so that its CPU use is neither the
// load generator's nor a replica's:
//   node --import tsx bench/balancer-process.ts <instances> <backend URL>...
// It runs `instances` copies of the tests' round-robin balancer (test/support/round-robin-
// balancer.ts: per request, no affinity) over the same backends, one per benchmark client, and
// prints `{"urls": [...]}` once they listen. Each line `routed` on stdin is answered with
// `{"routed": [[backend index, ...], ...]}`, what each copy routed since the last answer.
//
// One copy per client session makes the routing exact to attribute: a copy's first request is
// its session's initialize, so the backend it went to owns the session, and every later request
// that went elsewhere was relayed (hopped) to it. Rotating per request, the copies together route
// as one balancer without affinity does: each session's requests cycle through every replica.
import { createInterface } from 'node:readline';
import { startRoundRobinBalancer } from '../test/support/round-robin-balancer.js';

const [countArgument, ...backends] = process.argv.slice(2);
const count = Number(countArgument);
if (!Number.isInteger(count) || count < 1 || count > 256 || backends.length === 0) {
  process.stderr.write('usage: balancer-process.ts <instances 1-256> <backend URL>...\n');
  process.exit(2);
}
const balancers = await Promise.all(
  Array.from({ length: count }, () => startRoundRobinBalancer(backends)),
);
process.once('SIGTERM', () => {
  void Promise.all(balancers.map((balancer) => balancer.close())).finally(() => process.exit(0));
});
// Exit with the benchmark: it closes our stdin when it stops (or dies).
const commands = createInterface({ input: process.stdin });
commands.on('close', () => process.exit(0));
commands.on('line', (line) => {
  if (line.trim() !== 'routed') return;
  const routed = balancers.map((balancer) => balancer.routed.splice(0));
  process.stdout.write(`${JSON.stringify({ routed })}\n`);
});
process.stdout.write(`${JSON.stringify({ urls: balancers.map((balancer) => balancer.url) })}\n`);
