/**
 * CPU seconds spent by the processes a bench drives, sampled from /proc every 250 ms (Linux only): the figure
 * that stays meaningful on a shared, noisy machine, where wall time does not. Counted per group:
 *
 *  - `node`: the given process ids and all their descendants (an API server and its cluster workers);
 *  - `postgres`: the backends connected to the given database, and their parallel workers;
 *  - `redis`: redis-server (the whole server: other users of it on the machine count too).
 *
 * A process that lives less than one sample is missed, so each figure is a lower bound.
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSeconds {
  node: number;
  postgres: number;
  redis: number;
}

interface ProcessInfo {
  pid: number;
  ppid: number;
  cmdline: string;
  cpu: number;
}

function readProcesses(): ProcessInfo[] {
  const processes: ProcessInfo[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ');
      processes.push({ pid: Number(entry), ppid: Number(fields[1]), cmdline, cpu: (Number(fields[11]) + Number(fields[12])) / 100 });
    } catch {
      // gone meanwhile
    }
  }
  return processes;
}

export function cpuSampler(options: { rootPids?: readonly number[]; database?: string }): { stop(): CpuSeconds } {
  const first = new Map<number, number>();
  const last = new Map<number, { group: keyof CpuSeconds; cpu: number }>();
  const sample = (initial: boolean) => {
    const processes = readProcesses();
    const ours = new Set(options.rootPids ?? []);
    // Descendants: repeat until no new child is found (a cluster's workers are the primary's children).
    for (let grew = true; grew; ) {
      grew = false;
      for (const p of processes) {
        if (ours.has(p.pid) || !ours.has(p.ppid)) continue;
        ours.add(p.pid);
        grew = true;
      }
    }
    for (const p of processes) {
      let group: keyof CpuSeconds | undefined;
      if (ours.has(p.pid)) group = 'node';
      else if (p.cmdline.startsWith('redis-server')) group = 'redis';
      else if (p.cmdline.startsWith('postgres:') && options.database) {
        const leader = /parallel worker for PID (\d+)/.exec(p.cmdline)?.[1];
        if (p.cmdline.includes(` ${options.database} `) || (leader && last.has(Number(leader)))) group = 'postgres';
      }
      if (!group) continue;
      if (initial) first.set(p.pid, p.cpu);
      else if (!first.has(p.pid) && !last.has(p.pid)) first.set(p.pid, 0); // started after the first sample
      last.set(p.pid, { group, cpu: p.cpu });
    }
  };
  sample(true);
  const timer = setInterval(() => sample(false), 250);
  return {
    stop() {
      clearInterval(timer);
      sample(false);
      const total: CpuSeconds = { node: 0, postgres: 0, redis: 0 };
      for (const [pid, { group, cpu }] of last) total[group] += cpu - (first.get(pid) ?? 0);
      return total;
    },
  };
}

/** "API 3.10 ms, Postgres 2.95 ms, Redis 0.40 ms a request (6.45 in all)". */
export function cpuPerUnit(cpu: CpuSeconds, units: number, unit: string, nodeLabel = 'API'): string {
  const ms = (seconds: number) => ((seconds * 1000) / units).toFixed(2);
  return `CPU a ${unit}: ${nodeLabel} ${ms(cpu.node)} ms, Postgres ${ms(cpu.postgres)} ms, Redis ${ms(cpu.redis)} ms (${ms(cpu.node + cpu.postgres + cpu.redis)} ms in all)`;
}
