"""`mf-ext migrate` and `mf-ext validate`.

Kept import-light on purpose: ``--help`` and the migration itself need only PyYAML; ``validate`` imports
MindFormers (for the config classes' signatures) only when a YAML names classes it must check.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

MIGRATE_EXAMPLES = """\
examples:
  # Llama 2 finetune YAML -> Llama 3 8B (prints the diff, writes the result)
  mf-ext migrate --config configs/llama2/finetune_llama2_7b.yaml --to llama3_8b --output finetune_llama3_8b.yaml
  # ... -> Llama 3.1 70B, only show what would change
  mf-ext migrate --config configs/llama2/predict_llama2_7b.yaml --to llama3_1_70b --dry-run
  # a MindFormers YAML for an HF checkpoint's config.json
  mf-ext migrate --hf_config /path/Llama-3.1-8B/config.json --register_path research/llama3_1 --output x.yaml
"""

VALIDATE_EXAMPLES = """\
examples:
  mf-ext validate --config research/llama3_1/predict.yaml --register_path research/llama3_1
  mf-ext validate --config x.yaml --hf_config /path/Llama-3.1-8B/config.json   # also compare with config.json
"""


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the usage block is in --help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _preset_names() -> str:
    from mf_ext.errors import MfExtError
    from mf_ext.migrate.presets import all_presets

    try:
        return ", ".join(f"{name} ({plugin.family.name})" for name, (plugin, _) in all_presets().items()) or "none"
    except MfExtError as exc:  # a broken family must not break --help
        return f"(cannot list: {exc})"


def _migrate_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mf-ext migrate",
        description="Migrate a MindFormers YAML to a preset a model family declares (e.g. a Llama 2 YAML to Llama "
        "3 / 3.1, changing only the keys the new model needs, keeping every other setting and comment), or write "
        "a MindFormers YAML for an HF config.json (the family that reads its architectures, or --register_path).",
        epilog=MIGRATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="MindFormers YAML to migrate")
    src.add_argument("--hf_config", help="HF config.json (or the folder holding it) to write a YAML for")
    p.add_argument("--to", metavar="PRESET", help=f"target model for --config: {_preset_names()}")
    p.add_argument("--output", help="where to write the YAML (written to a temporary name, then renamed)")
    p.add_argument(
        "--register_path",
        default=None,
        help="family folder: its presets (--config) or its classes and HF mapping (--hf_config); default: every "
        "built-in or installed family (--config), the family that reads config.json's architectures (--hf_config)",
    )
    p.add_argument("--base", help="with --hf_config: set the architecture in this YAML instead of a template")
    p.add_argument(
        "--run_mode",
        default="predict",
        choices=["predict", "finetune", "train", "eval"],
        metavar="MODE",
        help="run_mode of the YAML written for --hf_config",
    )
    p.add_argument("--seq_length", type=int, help="seq_length of the YAML written for --hf_config")
    p.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true", help="print the diff, write nothing")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the diff")
    return p


def migrate_main(argv: list[str] | None = None) -> int:
    """Entry point of ``mf-ext migrate``; returns the exit status."""
    parser = _migrate_parser()
    args = parser.parse_args(argv)
    from mf_ext.errors import MfExtError
    from mf_ext.migrate.migrate import (
        MigrationError,
        hf_config_to_yaml,
        migrate_text,
        read_hf_config,
        read_yaml_text,
        write_atomic,
    )

    notes: list[str] = []
    try:
        if args.output is not None and not args.dry_run:
            folder = Path(args.output).parent
            if not folder.is_dir():
                raise MigrationError(f"output folder {str(folder)!r} does not exist")
        if args.config is not None:
            if args.to is None:
                parser.error("--config needs --to PRESET")
            if args.output is None and not args.dry_run:
                parser.error("--config needs --output (or --dry-run)")
            original = read_yaml_text(args.config)
            result = migrate_text(original, args.to, name=args.config, register_path=args.register_path)
            if not args.quiet:
                sys.stdout.write(result.diff(original, fromfile=args.config, tofile=args.output or "(dry run)"))
            notes = result.notes
            text = result.text
        else:
            if args.output is None and not args.dry_run:
                parser.error("--hf_config needs --output (or --dry-run)")
            if args.register_path is not None and not Path(args.register_path).is_dir():
                raise MigrationError(f"--register_path {args.register_path!r} is not a folder")
            if args.to is not None:
                parser.error("--to applies to --config, not --hf_config")
            hf = read_hf_config(args.hf_config)
            base = read_yaml_text(args.base) if args.base else None
            with contextlib.redirect_stdout(sys.stderr):  # MindFormers logs to stdout on import
                text = hf_config_to_yaml(
                    hf,
                    source=args.hf_config,
                    output=args.output or "model.yaml",
                    register_path=args.register_path,
                    run_mode=args.run_mode,
                    seq_length=args.seq_length,
                    base=base,
                )
            if not args.quiet and base is not None:
                sys.stdout.write(_diff(base, text, args.base, args.output or "(dry run)"))
            elif not args.quiet and args.dry_run:
                sys.stdout.write(text)
        if not args.dry_run:
            write_atomic(args.output, text)
            print(f"wrote {args.output}", file=sys.stderr)
    except (MfExtError, OSError) as exc:
        print(f"mf-ext migrate: error: {exc}", file=sys.stderr)
        return 2
    for note in notes:  # after the work succeeded: an error stays the only line on failure
        print(f"note: {note}", file=sys.stderr)
    return 0


def _diff(old: str, new: str, fromfile: str, tofile: str) -> str:
    import difflib

    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), fromfile=fromfile, tofile=tofile))


def _validate_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="mf-ext validate",
        description="Check a MindFormers YAML without building the model: unknown keys (with close matches), "
        "wrong types, inconsistent values; every problem is reported at once with its key path.",
        epilog=VALIDATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", required=True, help="MindFormers YAML to check")
    p.add_argument(
        "--register_path",
        action="append",
        default=[],
        help="plug-in folder(s) for auto_register entries (repeat or comma-separate; also REGISTER_PATH)",
    )
    p.add_argument("--hf_config", help="also check the architecture against this HF config.json")
    return p


def validate_main(argv: list[str] | None = None) -> int:
    """Entry point of ``mf-ext validate``; returns 0 when the YAML is clean, 1 when problems were found."""
    args = _validate_parser().parse_args(argv)
    from mf_ext.migrate.validate import ValidationInputError, validate_file

    paths = [p for item in args.register_path for p in item.split(",") if p]
    try:
        # MindFormers logs to stdout on import: keep stdout for the report alone
        with contextlib.redirect_stdout(sys.stderr):
            report = validate_file(args.config, register_path=paths or None, hf_config=args.hf_config)
    except ValidationInputError as exc:
        print(f"mf-ext validate: error: {exc}", file=sys.stderr)
        return 2
    for warning in report.warnings:
        print(f"warning: {warning}")
    problems = report.errors
    for problem in problems:
        print(problem)
    if problems:
        print(f"{args.config}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.config}: OK", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m mf_ext.migrate.cli migrate|validate ...`` (the ``mf-ext`` console script dispatches here too)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "migrate":
        return migrate_main(argv[1:])
    if argv and argv[0] == "validate":
        return validate_main(argv[1:])
    print("usage: python -m mf_ext.migrate.cli {migrate,validate} ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
