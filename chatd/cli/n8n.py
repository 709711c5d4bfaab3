"""`chatd n8n-workflow` (an importable workflow) and `chatd n8n-check` (one signed test call)."""

from __future__ import annotations

import argparse
import json
import sys

from chatd.n8n.workflow import build_workflow
from chatd.settings import load_settings


def run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.command == "n8n-workflow":
        try:
            flow = build_workflow(
                mode=args.mode,
                chatd_url=settings.public_url,
                webhook_path=args.path,
                n8n_mode=settings.n8n.mode,
            )
        except ValueError as exc:
            print(f"chatd: {exc}", file=sys.stderr)
            return 2
        print(json.dumps(flow, indent=2, ensure_ascii=False))
        return 0
    from chatd.cli.n8n_check import run_check  # httpx and trio: only for the check

    return run_check(settings, args.url)
