/**
 * Catch-up (issue 3): 2,000 anvil blocks with 20 matching logs each are mined while the subscriber
 * is stopped; it is then started and timed until every block's events are queued (delivery
 * records and BullMQ jobs in Redis). Beside it, in the same run, a plain sequential eth_getLogs
 * loop over the same range on one WebSocket: the floor of reading those logs at all.
 */
import type { RedisClient } from '../src/storage/redis.js'
import { pino } from 'pino'
import { encodeFunctionData, type Address } from 'viem'
import { RpcSocket } from '../src/chains/rpc-socket.js'
import { TRANSFER_TOPIC } from '../src/chains/evm/abi.js'
import { startAnvil, startRedis } from '../test/helpers/processes.js'
import { anvilClients, compiledTokens, deploy } from '../test/helpers/contracts.js'
import { harness, rpc } from '../test/helpers/subscriber-harness.js'
import { processCpuMs, redisMainThreadCpuMs, sendAndMine } from './bench-processes.js'

const BLOCKS = Number(process.env.CATCH_UP_BLOCKS ?? 2_000)
const LOGS_PER_BLOCK = 20
const BOB = '0x00000000000000000000000000000000000000b0' as Address

/** Scripts count the commands they run twice (the script and each command), so only scripts are listed. */
async function busiestCommands(client: RedisClient): Promise<{ name: string; calls: number; usec: number }[]> {
  return (await client.info('commandstats')).split('\n').flatMap((line) => {
    const match = /^cmdstat_(evalsha|eval):calls=(\d+),usec=(\d+)/.exec(line.trim())
    return match ? [{ name: match[1]!, calls: Number(match[2]), usec: Number(match[3]) }] : []
  })
}

const redis = await startRedis()
const anvil = await startAnvil(['--no-mining'])
const teardowns: (() => unknown)[] = []
const fakeTest = { teardown: (fn: () => unknown) => { teardowns.push(fn) } }
try {
  const clients = anvilClients(anvil.url)
  const token = await deploy(clients, 'TestToken', async () => { await rpc(anvil.url, 'evm_mine') })
  const h = harness(fakeTest as never, redis.url, { ws: [anvil.wsUrl], http: anvil.url })
  const watch = await h.createWatch({ type: 'evm.logs', filter: { address: process.env.NO_MATCH ? BOB : token, topics: [TRANSFER_TOPIC] } })

  // A cursor at the current head, then the blocks mined while stopped (automine: one block per tx).
  const first = await h.startSubscriber()
  const start = await h.mine()
  await h.caughtUp(first, start)
  await first.close()
  const mineStart = Date.now()
  const data = encodeFunctionData({ abi: compiledTokens().TestToken.abi, functionName: 'spray', args: [BOB, BigInt(LOGS_PER_BLOCK)] })
  // One block per transaction.
  for (let i = 0; i < BLOCKS; i++) await sendAndMine(anvil.url, token, data)
  const head = Number(await rpc<string>(anvil.url, 'eth_blockNumber'))
  if (head - start !== BLOCKS) throw new Error(`expected ${BLOCKS} blocks, the node has ${head - start}`)
  console.log(`mined ${head - start} blocks of ${LOGS_PER_BLOCK} logs in ${((Date.now() - mineStart) / 1000).toFixed(1)} s`)

  // Redis's own share: main-thread CPU and the time in its busiest commands, per event queued.
  await h.redis.config('RESETSTAT')
  const redisCpu0 = await redisMainThreadCpuMs(h.redis)
  const anvilCpu0 = processCpuMs(anvil.child.pid!)
  const ownCpu0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  const second = await h.startSubscriber()
  await h.leader(second)
  const startupMs = Number(process.hrtime.bigint() - t0) / 1e6
  await h.caughtUp(second, head)
  const subscriberMs = Number(process.hrtime.bigint() - t0) / 1e6
  const queued = Number(await h.redis.hget(h.keys.watchStats(watch.id), 'matched'))
  const ownCpu = process.cpuUsage(ownCpu0)
  const anvilCpuMs = processCpuMs(anvil.child.pid!) - anvilCpu0
  const redisCpuMs = (await redisMainThreadCpuMs(h.redis)) - redisCpu0
  const redisCommands = await busiestCommands(h.redis)
  await second.close()
  if (!process.env.NO_MATCH && queued !== BLOCKS * LOGS_PER_BLOCK) throw new Error(`expected ${BLOCKS * LOGS_PER_BLOCK} queued, found ${queued}`)

  const socket = new RpcSocket({ name: 'bench', endpoints: [anvil.wsUrl], logger: pino({ level: 'silent' }) })
  const connected = new Promise<void>((resolve) => socket.on('connected', () => resolve()))
  socket.start()
  await connected
  const t1 = process.hrtime.bigint()
  let logs = 0
  for (let n = start + 1; n <= head; n++) {
    const block = `0x${n.toString(16)}`
    logs += (await socket.request<unknown[]>('eth_getLogs', [{ fromBlock: block, toBlock: block, address: token }])).length
  }
  const plainMs = Number(process.hrtime.bigint() - t1) / 1e6
  await socket.close()

  const ratio = subscriberMs / plainMs
  console.log(`subscriber: ${BLOCKS} blocks, ${queued} events queued in ${(subscriberMs / 1000).toFixed(2)} s = ${(BLOCKS / (subscriberMs / 1000)).toFixed(0)} blocks/s (of which start, lease and watch load: ${startupMs.toFixed(0)} ms)`)
  if (queued > 0) {
    const perEvent = (us: number) => `${(us / queued).toFixed(1)} us`
    console.log(`CPU per event queued: subscriber process ${perEvent(ownCpu.user + ownCpu.system)}, redis main thread ${perEvent(redisCpuMs * 1000)}, anvil ${perEvent(anvilCpuMs * 1000)}`)
    console.log(`redis scripts (wall time inside redis, per event): ${redisCommands.map((c) => `${c.name} ${perEvent(c.usec)} (${c.calls} calls)`).join(', ')}`)
  }
  console.log(`plain eth_getLogs loop: ${logs} logs in ${(plainMs / 1000).toFixed(2)} s = ${(BLOCKS / (plainMs / 1000)).toFixed(0)} blocks/s`)
  if (!process.env.NO_MATCH && logs !== queued) throw new Error(`the plain loop read ${logs} logs, the subscriber queued ${queued}`)
  console.log(`ratio ${ratio.toFixed(2)} (target <= 2) ${ratio <= 2 ? 'OK' : 'OVER'}`)
} finally {
  for (const fn of teardowns.reverse()) await fn()
  await anvil.stop()
  await redis.stop()
}
