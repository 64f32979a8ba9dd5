"""`python -m aigc.publish`: upload the bundled checkpoints, with their
model cards, to one Hugging Face Hub model repo, the layout aigc.load reads.

    HF_TOKEN=hf_... python -m aigc.publish --repo my-org/aigc-models
    python -m aigc.publish --repo my-org/aigc-models --revision experiment --private
    python -m aigc.publish --repo my-org/aigc-models --dry-run --out hub-upload   # uploads nothing

What goes up (an allow-list: train_state.pt, a pickle of the optimizer state,
never leaves the machine):
    README.md                         the repo's card: every model's numbers, samples, how to load, training facts
    <name>/config.json                constructor arguments and family
    <name>/model.safetensors          the weights
    <name>/history.jsonl              one line per epoch
    <name>/training.json              hardware, date, batch size, learning rate, seed
    <name>/metrics.json               when `python -m aigc.evaluate` wrote one
    <name>/samples/epoch_NNN.png      the latest fixed-noise grid
    <name>/README.md                  this model's card

Every checkpoint is loaded (strictly) before anything is sent, so a broken
one stops the upload instead of reaching the Hub. The token comes from
HF_TOKEN (or `hf auth login`), the endpoint from HF_ENDPOINT.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from .card import make_hub_model_card, make_repo_card, sample_grid
from .hub import BUNDLED, BUNDLED_DIR, check_identity, endpoint, parse_repo
from .io import atomic_write_text

REQUIRED = ("config.json", "model.safetensors", "history.jsonl")
OPTIONAL = ("training.json", "metrics.json")


class PublishError(Exception):
    """A checkpoint cannot be published as it is; the message says which and why."""


def check_checkpoints(checkpoints: Path, models: list[str]) -> dict[str, Path]:
    """{name: folder} for the models to publish, after loading each one strictly
    and checking it is the family and dataset its name says. All problems are
    reported together."""
    from . import load_folder

    problems, folders = [], {}
    for name in models:
        folder = checkpoints / name
        missing = [f for f in REQUIRED if not (folder / f).is_file()]
        if missing:
            problems.append(f"{folder}: missing {', '.join(missing)} (has training finished an epoch?)")
            continue
        try:
            check_identity(name, folder)
            load_folder(folder, device="cpu")
        except Exception as e:  # any reason it would not load for a user is a reason not to upload it
            problems.append(f"{folder}: does not load ({type(e).__name__}: {str(e).strip().splitlines()[0]})")
            continue
        folders[name] = folder
    if problems:
        raise PublishError("not published, fix these first:\n  " + "\n  ".join(problems))
    return folders


def stage(out: Path, folders: dict[str, Path], repo_id: str, revision: str) -> list[Path]:
    """Write the repo's files into `out` (which must be empty or absent);
    returns their paths relative to `out`. The repo's README.md describes all
    models, so it is written only when all of them are published: a partial
    publish updates its models' folders and leaves the README as it is."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise PublishError(f"{out} exists and is not an empty folder; choose another --out or remove it")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def put(rel: str, src: Path | None = None, text: str | None = None) -> None:
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src is not None:
            shutil.copyfile(src, dst)
        else:
            atomic_write_text(dst, text)
        written.append(Path(rel))

    for name, folder in folders.items():
        for f in REQUIRED + OPTIONAL:
            if (folder / f).is_file():
                put(f"{name}/{f}", folder / f)
        grid = sample_grid(folder)
        if grid is not None:
            put(f"{name}/samples/{grid.name}", grid)
        spec = repo_id if revision == "main" else f"{repo_id}@{revision}"  # what its load line should name
        put(f"{name}/README.md", text=str(make_hub_model_card(folder, name, spec)))
    if set(folders) == set(BUNDLED):
        put("README.md", text=str(make_repo_card(folders, repo_id, revision)))
    return written


def upload(staged: Path, repo_id: str, revision: str, private: bool, message: str):
    """create_repo (if needed), the branch (if needed), then one commit with
    the whole staged folder. Returns huggingface_hub's CommitInfo."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint())
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    return api.upload_folder(repo_id=repo_id, folder_path=staged, revision=revision, commit_message=message)


def main(argv: list[str] | None = None) -> int:
    intro, _, rest = __doc__.partition("\n\n")
    p = argparse.ArgumentParser(prog="python -m aigc.publish", description=intro, epilog=rest,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repo", required=True, help="the Hub model repo, ORG/NAME (created when missing)")
    p.add_argument("--revision", default="main", help="branch to commit to (created from main when missing)")
    p.add_argument("--private", action="store_true",
                   help="create the repo private (an existing repo keeps its setting)")
    p.add_argument("--dry-run", action="store_true", help="write what would be uploaded into --out, upload nothing")
    p.add_argument("--out", type=Path, help="folder to stage the files in (required with --dry-run; "
                                            "must be empty or absent); default: a temporary folder")
    p.add_argument("--checkpoints", type=Path, default=BUNDLED_DIR, help="where the checkpoint folders are "
                                                                          "(default: the bundled checkpoints/)")
    p.add_argument("--models", nargs="+", default=list(BUNDLED), choices=BUNDLED, metavar="NAME",
                   help=f"which models (default: all of them: {' '.join(BUNDLED)})")
    args = p.parse_args(argv)
    try:
        repo_id, _ = parse_repo(args.repo)
    except ValueError as e:
        p.error(str(e))
    if "@" in args.repo:
        p.error(f"--repo takes ORG/NAME; give the branch with --revision, not {args.repo!r}")
    if args.dry_run and args.out is None:
        p.error("--dry-run needs --out DIR: the folder to write what would be uploaded into")
    if not args.dry_run:
        from huggingface_hub import get_token

        if not get_token():
            p.error("no Hugging Face token: set HF_TOKEN to a token with write access "
                    "(https://huggingface.co/settings/tokens), or run `hf auth login`")
    models = list(dict.fromkeys(args.models))

    tmp = None
    try:
        folders = check_checkpoints(args.checkpoints, models)
        if args.out is None:
            tmp = tempfile.mkdtemp(prefix="aigc-publish-")
        out = args.out or Path(tmp)
        files = stage(out, folders, repo_id, args.revision)
        total = sum((out / f).stat().st_size for f in files)
        print(f"staged {len(files)} files ({total / 1e6:.1f} MB) in {out}:")
        for f in files:
            print(f"  {f}  ({(out / f).stat().st_size:,} bytes)")
        if Path("README.md") not in files:
            print("README.md (the repo's card) left as it is: it describes all the models, "
                  "so only a publish of all of them rewrites it")
        if args.dry_run:
            print(f"dry run: nothing uploaded; without --dry-run these go to {repo_id}@{args.revision}")
            return 0
        info = upload(out, repo_id, args.revision, args.private, message=f"aigc: publish {', '.join(models)}")
    except PublishError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # the Hub's answer (auth, network, conflict): a line or two, not a traceback
        said = " ".join(line.strip() for line in str(e).splitlines() if line.strip())[:300]
        print(f"error: upload to {repo_id}@{args.revision} on {endpoint()} failed: {type(e).__name__}: {said}",
              file=sys.stderr)
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"published {info.commit_url}")
    print(f'load with: aigc.load("{models[0]}", hub_repo="{repo_id}@{info.oid}")   '
          f"# or python app.py --hub-repo {repo_id}@{info.oid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
