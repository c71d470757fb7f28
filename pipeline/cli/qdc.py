"""`survey-pipeline codebook export-qdc` / `import-qdc`: the codebooks as a REFI-QDA codebook
(.qdc) for NVivo, ATLAS.ti, MAXQDA, QualCoder, and a .qdc from those tools into our YAML
(docs/exchange.md)."""

from __future__ import annotations

from pathlib import Path

import typer

from pipeline.cli import fail
from pipeline.cli.code import codebook_app


@codebook_app.command("export-qdc")
def export_qdc(
    paths: list[Path] = typer.Argument(..., help="Codebook YAML files or folders."),
    out: Path = typer.Option(..., "--out", "-o", help="The .qdc file to write."),
) -> None:
    """Write the codebooks as one REFI-QDA codebook: framework > category > code, each code's
    description and meaning (definition, use when, not when, examples). Keywords stay in the
    YAML."""
    from pipeline.core.coding.codebook import CodebookError, load_codebooks
    from pipeline.core.exchange.qdc import write_qdc

    try:
        books = load_codebooks(paths)
    except CodebookError as e:
        fail(str(e))
    write_qdc(books, out)
    n = sum(len(b.codes) for b in books)
    typer.echo(f"wrote {out}: {len(books)} framework(s), {n} codes")


@codebook_app.command("import-qdc")
def import_qdc(
    qdc_file: Path = typer.Argument(..., help="A .qdc (or a .qdpx, whose codebook is read)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the YAML codebooks written "
                             "(one <framework>.yaml each; may be the codebooks folder itself)."),
    codebooks: list[Path] = typer.Option(None, "--codebooks", help="Existing codebooks to merge "
                                         "into (their keywords, exclusions and aliases are "
                                         "kept)."),
    framework: str = typer.Option(None, "--framework", help="Framework id for codes the file "
                                  "does not put under a framework (default: from the file "
                                  "name)."),
) -> None:
    """Read a REFI-QDA codebook into our YAML codebooks: codes, framework > category > code,
    descriptions and meaning; keywords kept from --codebooks; new codes get their label as
    their one keyword (listed: review them)."""
    from pipeline.core.coding.codebook import CodebookError
    from pipeline.core.exchange.qdc import QdcError
    from pipeline.core.exchange.qdc_import import import_qdc as run_import

    if not qdc_file.is_file():
        fail(f"no such file: {qdc_file}")
    try:
        report = run_import(qdc_file, out, codebooks or None, framework)
    except (QdcError, CodebookError) as e:
        fail(str(e))
    for line in report.lines():
        typer.echo(line)
