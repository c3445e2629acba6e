/**
 * `npm run fuzz [-- FRAMES [MAX_SECONDS]]`: the fuzzer at length (default 1,000,000 frames,
 * at most an hour), printing progress and a JSON report; exits 1 on a crash or a wrong answer.
 */
import { runFuzz } from './fuzzer';

async function main(): Promise<void> {
  const frames = Number(process.argv[2] ?? 1_000_000);
  const maxSeconds = Number(process.argv[3] ?? 3600);
  let last = 0;
  const report = await runFuzz({
    frames,
    maxSeconds,
    onProgress: (r) => {
      if (r.frames - last < 50_000) return;
      last = r.frames;
      process.stderr.write(
        `fuzz: ${r.frames} frames, ${r.replies} replies, ${r.crashes} crashes, RSS peak ${r.rssPeakMb.toFixed(1)} MB\n`,
      );
    },
  });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  process.exitCode = report.crashes === 0 && report.controlFailures.length === 0 && report.frames >= frames ? 0 : 1;
}

void main();
