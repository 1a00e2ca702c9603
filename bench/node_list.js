// The official Node.js SDK (@alicloud/iot20180120) listing every task of a
// job page by page, sequentially, the way its users write it. Prints one JSON
// line: {"tasks":N,"pages":P,"seconds":S,"cpu_seconds":C,"rss_kb":K}.
//   node bench/node_list.js <port> <JobId> [PageSize]
'use strict';
const Iot = require('@alicloud/iot20180120');
const OpenApi = require('@alicloud/openapi-client');

async function main() {
  const [port, jobId, pageSizeArg] = process.argv.slice(2);
  const pageSize = Number(pageSizeArg || 100);
  const client = new Iot.default(new OpenApi.Config({
    accessKeyId: process.env.BENCH_ACCESS_KEY_ID,
    accessKeySecret: process.env.BENCH_ACCESS_KEY_SECRET,
    regionId: 'cn-shanghai',
    endpoint: `127.0.0.1:${port}`,
    protocol: 'http',
  }));
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let tasks = 0, pages = 0, sink = 0;
  for (let page = 1; ; page++) {
    const resp = await client.listOTATaskByJob(new Iot.ListOTATaskByJobRequest({
      jobId, pageSize, currentPage: page,
    }));
    pages++;
    const body = resp.body;
    if (!body.success) throw new Error(`listing failed: ${body.code} ${body.errorMessage}`);
    const list = (body.data && body.data.simpleOTATaskInfo) || [];
    for (const t of list) { tasks++; sink += t.deviceName.length; }
    if (list.length === 0 || page >= body.pageCount) break;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(JSON.stringify({
    tasks, pages, seconds, cpu_seconds: (cpu.user + cpu.system) / 1e6,
    rss_kb: Math.round(process.memoryUsage().rss / 1024), sink,
  }) + '\n');
}
main().catch((e) => { console.error(String(e && e.stack || e)); process.exit(1); });
