#!/usr/bin/env python3
"""bench/api: the API's start-up costs on this machine's /dev/kvm with a probe guest (a PVH ELF
that powers off after four instructions, tests/lib/make-probe-kernel):
  - exec of vireo -> the API socket accepting a connection (median of RUNS);
  - PUT /actions InstanceStart -> its 204 (the VM is built: memory, vCPUs, devices, kernel);
  - InstanceStart -> the process has exited after the guest's power-off (the guest ran);
  - VMs started and torn down per second on one core: `vireo --no-api --config-file` in a
    loop pinned to CPU 0 (create -> start -> guest powers off -> exit).
Usage: api-bench.py BUILD_DIR [RUNS]"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

build = sys.argv[1]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 20
vireo = os.path.join(build, "vireo")
top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
tmp = tempfile.mkdtemp(prefix="vireo-apibench.")
kernel = os.path.join(tmp, "probe.elf")
subprocess.run([os.path.join(top, "tests/lib/make-probe-kernel"), kernel], check=True)


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def put(sock_path, path, body):
    c = UnixHTTPConnection(sock_path)
    c.request("PUT", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    c.close()
    return r.status


ready, start_204, start_exit = [], [], []
for i in range(runs):
    sock_path = os.path.join(tmp, f"s{i}.sock")
    t0 = time.perf_counter()
    p = subprocess.Popen([vireo, "--api-sock", sock_path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(sock_path)
            s.close()
            break
        except OSError:
            s.close()
            if p.poll() is not None:
                sys.exit(f"vireo exited with {p.returncode} before its socket accepted")
    ready.append(time.perf_counter() - t0)
    assert put(sock_path, "/boot-source", {"kernel_image_path": kernel}) == 204
    assert put(sock_path, "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}) == 204
    t1 = time.perf_counter()
    assert put(sock_path, "/actions", {"action_type": "InstanceStart"}) == 204
    start_204.append(time.perf_counter() - t1)
    p.wait(timeout=30)
    start_exit.append(time.perf_counter() - t1)
    assert p.returncode == 0, f"vireo exited with {p.returncode}"

config = os.path.join(tmp, "vm.json")
with open(config, "w") as f:
    json.dump({"boot-source": {"kernel_image_path": kernel},
               "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}, f)
n = max(runs, 30)
t0 = time.perf_counter()
for _ in range(n):
    subprocess.run(["taskset", "-c", "0", vireo, "--no-api", "--config-file", config],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
vms_per_s = n / (time.perf_counter() - t0)


def ms(xs):
    return f"median {statistics.median(xs) * 1000:7.2f} ms  (min {min(xs) * 1000:.2f}, max {max(xs) * 1000:.2f})"


print(f"bench/api on this host's /dev/kvm, probe guest, {runs} runs")
print(f"exec -> API socket accepting        {ms(ready)}   target <= 10 ms")
print(f"InstanceStart -> 204 (VM built)     {ms(start_204)}")
print(f"InstanceStart -> guest ran, exited  {ms(start_exit)}")
print(f"VMs started and torn down per second on one core: {vms_per_s:.1f}   target >= 10 (Firecracker publishes 5)")
