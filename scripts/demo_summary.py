"""Print the end of `make demo`: verdict, score, speed, and where to look next."""

import json
import sys
from pathlib import Path

result_path = Path(sys.argv[1] if len(sys.argv) > 1 else "submission/result.json")
r = json.loads(result_path.read_text())
images = r.get("images") or 0
wall = r.get("wall_seconds") or 0.0
speed = f"{images / wall:.1f} images/s ({1000 * wall / images:.0f} ms/image" if images else "n/a"
speed += ", start-up and model loading included)" if images else ""
peak = r.get("peak_memory_bytes")
print()
print(f"verdict : {r['status']} - {r['message']}")
print(f"score   : {r['score']:.4f} mean IoU" if r.get("score") is not None else "score   : n/a")
print(f"speed   : {images} images in {wall:.1f} s, {speed}")
print(f"memory  : peak {peak / 2**20:.0f} MiB" if peak else "memory  : peak unknown")
report = r.get("report") or str(result_path.parent / "report" / "index.html")
print(f"report  : {report}")
print(f"log     : {result_path.parent / r.get('log', 'log.txt')}")
