"""``ftlens export``."""

from __future__ import annotations

from pathlib import Path

import click

from ftlens.cli import render


@click.command("export")
@click.argument("model_id")
@click.option("--out", "out_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="A new folder.")
@click.option("--merged", is_flag=True, help="A merged Hugging Face model (safetensors, "
              "tokenizer, chat template) that plain transformers loads, instead of the adapter.")
@click.option("--gguf", is_flag=True, help="Also a GGUF (model.gguf), through llama.cpp's "
              "converter ($LLAMA_CPP_DIR or convert_hf_to_gguf.py on the PATH).")
@click.option("--home", type=click.Path(file_okay=False, path_type=Path),
              help="The service's home. Default: $FTLENS_HOME or ~/.ftlens.")
@render.json_flag("export")
def export(model_id: str, out_dir: Path, merged: bool, gguf: bool, home: Path | None,
           as_json: bool) -> None:
    """Write a fine-tuned model (or checkpoint) of `ftlens serve` out of its home: a PEFT
    adapter directory (PEFT and vLLM load it), or with --merged a whole Hugging Face model.

    \b
    Examples:
      ftlens export ft:smollm2-135m-instruct:ftlens:spam:ab12cd34 --out spam-adapter
      ftlens export ft:smollm2-135m-instruct:ftlens:spam:ab12cd34 --out spam-model --merged
      ftlens export ft:smollm2-135m-instruct:ftlens:spam:ab12cd34:ckpt-step-65 --out ckpt
    """
    from ftlens.steps.export import export_model
    from ftlens.train.models import ftlens_home

    done = export_model(model_id, out_dir, home=home or ftlens_home(), merged=merged,
                        gguf=gguf)
    if as_json:
        render.print_json({"out": str(done.out), "kind": done.kind, "base": done.base})
    else:
        render.stdout().print(f"exported {model_id} as {done.kind} to {done.out} "
                              f"(base: {done.base})", highlight=False, soft_wrap=True)
