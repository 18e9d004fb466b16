"""``python -m shared.deploy check [PATH ...]``: validate overlays (default: every overlay).

A PATH is a kustomization directory (rendered with kubectl kustomize) or a YAML file. Exit
status: 0 valid, 1 problems found (each printed as ``file: document: field: message``),
2 the check could not run (no kubectl, kustomize failed, the Knative CRDs missing under CI).

``python -m shared.deploy expect-broken DIR ...`` proves the checks work: each DIR is a broken
fixture whose ``kustomization.yaml`` says ``# expect: <file> | <document> | <field>``; exit 0
only when every fixture is rejected with exactly that problem among its findings.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from shared.deploy.bundle import Bundle, BundleError, Problem, load_file, render
from shared.deploy.schemas import MissingCrds, Schemas, validate

ROOT = Path(__file__).resolve().parents[2]


def overlays(root: Path = ROOT) -> list[Path]:
    return sorted(p.parent for p in (root / "knative" / "overlays").glob("*/kustomization.yaml"))


def crds_dir(root: Path = ROOT) -> Path:
    """``KNATIVE_CRDS_DIR``, else ``shared/knative-crds`` beside the repository, or beside the
    repository it was cloned from (a checkout in a temporary folder, as CI makes)."""
    if os.environ.get("KNATIVE_CRDS_DIR"):
        return Path(os.environ["KNATIVE_CRDS_DIR"])
    beside = root.parent / "shared" / "knative-crds"
    origin = _cloned_from(root)
    if not beside.is_dir() and origin is not None:
        cloned = origin.parent / "shared" / "knative-crds"
        if cloned.is_dir():
            return cloned
    return beside


def _cloned_from(root: Path) -> Path | None:
    """The local repository ``root`` was cloned from (its ``origin`` is a path), if any."""
    import subprocess

    found = subprocess.run(  # noqa: S603 (git, a fixed argument list)
        ["git", "-C", str(root), "config", "--get", "remote.origin.url"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    )
    url = found.stdout.strip()
    if found.returncode != 0 or not url or "://" in url or ":" in url.split("/")[0]:
        return None  # none, or a remote (https://…, git@host:…)
    return (root / url).resolve()


def problems(bundle: Bundle, schemas: Schemas | None, root: Path = ROOT) -> Iterator[Problem]:
    from shared.deploy import knative, project

    yield from validate(bundle, schemas)
    context = project.Context(bundle, root)
    for rule in knative.RULES:
        yield from rule(context)
    yield from project.check(context)


def load(path: Path, root: Path = ROOT) -> Bundle:
    return render(path, root) if path.is_dir() else load_file(path, root)


EXPECT = re.compile(r"^# expect: (.+?) \| (.+?) \| (.+?)\s*$", re.M)


def expected(fixture: Path) -> tuple[str, str, str]:
    """The problem a broken fixture must produce: (file, document, field)."""
    match = EXPECT.search((fixture / "kustomization.yaml").read_text(encoding="utf-8"))
    if match is None:
        raise BundleError(f"{fixture}: no '# expect: file | document | field' line")
    source, document, field = match.groups()
    return source, document, field


def fixture_verdict(fixture: Path, schemas: Schemas | None) -> tuple[bool, list[Problem]]:
    """Whether the fixture's expected problem is found, and everything that was."""
    want = expected(fixture)
    found = list(problems(load(fixture), schemas))
    return any((p.source, p.document, p.field) == want for p in found), found


def _schemas_or_exit() -> Schemas | int | None:
    try:
        return Schemas.load(crds_dir())
    except MissingCrds as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            print(f"deploy-check: {exc}", file=sys.stderr)
            return 2
        print(
            f"deploy-check: warning: {exc} Knative kinds are not schema-checked.", file=sys.stderr
        )
        return None


def _expect_broken(fixtures: list[Path], schemas: Schemas | None) -> int:
    missed = 0
    for fixture in fixtures:
        ok, found = fixture_verdict(fixture, schemas)
        want = " | ".join(expected(fixture))
        if ok:
            print(f"rejected as expected: {fixture.name}: {want}", file=sys.stderr)
        else:
            missed += 1
            print(f"NOT rejected as expected: {fixture}: wanted {want}; found:", file=sys.stderr)
            for item in found:
                print(f"  {item}", file=sys.stderr)
    print(f"deploy-check: {len(fixtures) - missed}/{len(fixtures)} broken fixtures rejected")
    return 1 if missed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.deploy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="validate overlays or files")
    check.add_argument("paths", nargs="*", type=Path, help="default: knative/overlays/*")
    broken = commands.add_parser("expect-broken", help="prove every broken fixture is rejected")
    broken.add_argument("fixtures", nargs="+", type=Path)
    args = parser.parse_args(argv)

    schemas = _schemas_or_exit()
    if isinstance(schemas, int):
        return schemas
    try:
        if args.command == "expect-broken":
            return _expect_broken(args.fixtures, schemas)
        return _check(args.paths or overlays(), schemas)
    except BundleError as exc:
        print(f"deploy-check: {exc}", file=sys.stderr)
        return 2


def _check(paths: list[Path], schemas: Schemas | None) -> int:
    failed = False
    for path in paths:
        bundle = load(path)
        found = list(problems(bundle, schemas))
        for item in found:
            print(item)
        verdict = f"{len(found)} problem(s)" if found else "valid"
        print(f"deploy-check: {bundle.name}: {len(bundle.documents)} documents, {verdict}")
        failed = failed or bool(found)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
