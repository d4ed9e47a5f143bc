"""The training entry point, for one process or many:

    python -m ftlens.train job.json
    accelerate launch --num_processes 4 -m ftlens.train job.json   # DDP (or FSDP via config)

``job.json`` is a :class:`~ftlens.train.config.TrainConfig` as JSON. Events are printed as
they come (main process only); the outcome is written to ``OUT_DIR/result.json``.
"""

from __future__ import annotations

import json
import sys

from ftlens.errors import FtlensError
from ftlens.train.config import Event, TrainConfig


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args and args[0] in ("-h", "--help") else 2
    from ftlens.train.engine import train

    def show(event: Event) -> None:
        print(json.dumps(event.as_dict()), flush=True)

    try:
        config = TrainConfig.load(args[0])
        result = train(config, callbacks=[show])
    except FtlensError as exc:
        print(f"error: {exc.render()}", file=sys.stderr)
        return 2
    return 0 if result.status == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
