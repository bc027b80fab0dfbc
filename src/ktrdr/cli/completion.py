"""``ktrdr completion bash|zsh``: a shell completion script generated from the parser.

The script holds, for each command path (``ktrdr``, ``ktrdr models``, ``ktrdr models list``),
the words that may follow: sub-commands and options. Anything else completes file names.

    eval "$(ktrdr completion bash)"        # ~/.bashrc
    eval "$(ktrdr completion zsh)"         # ~/.zshrc
"""

from __future__ import annotations

import argparse
import shlex

ROOT = "ktrdr"


def command_words(
    parser: argparse.ArgumentParser, path: str = ROOT
) -> dict[str, tuple[list[str], list[str]]]:
    """Command path -> (the sub-commands, the options) that may follow it."""
    commands: list[str] = []
    options: list[str] = []
    out: dict[str, tuple[list[str], list[str]]] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                commands.append(name)
                out.update(command_words(sub, f"{path} {name}"))
        else:
            options.extend(o for o in action.option_strings if o.startswith("--"))
    out[path] = (commands, options)
    return out


def _entries(parser: argparse.ArgumentParser, index: int, zsh: bool = False) -> str:
    pattern = "  {key} {value}" if zsh else "  [{key}]={value}"
    return "\n".join(
        pattern.format(key=shlex.quote(path), value=shlex.quote(" ".join(words[index])))
        for path, words in sorted(command_words(parser).items())
    )


def bash_script(parser: argparse.ArgumentParser) -> str:
    return f"""# bash completion for ktrdr: eval "$(ktrdr completion bash)"
declare -gA _KTRDR_CMDS=(
{_entries(parser, 0)}
)
declare -gA _KTRDR_OPTS=(
{_entries(parser, 1)}
)
_ktrdr() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" kpath={ROOT} w i
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="${{COMP_WORDS[i]}}"
    if [[ -n "${{_KTRDR_CMDS["$kpath $w"]+set}}" ]]; then kpath="$kpath $w"; fi
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "${{_KTRDR_OPTS[$kpath]}}" -- "$cur"))
  elif [[ -n "${{_KTRDR_CMDS[$kpath]}}" ]]; then
    COMPREPLY=($(compgen -W "${{_KTRDR_CMDS[$kpath]}}" -- "$cur"))
  else
    COMPREPLY=($(compgen -f -- "$cur"))
  fi
}}
complete -o filenames -F _ktrdr ktrdr
"""


def zsh_script(parser: argparse.ArgumentParser) -> str:
    return f"""#compdef ktrdr
# zsh completion for ktrdr: eval "$(ktrdr completion zsh)"
typeset -gA _KTRDR_CMDS _KTRDR_OPTS
_KTRDR_CMDS=(
{_entries(parser, 0, zsh=True)}
)
_KTRDR_OPTS=(
{_entries(parser, 1, zsh=True)}
)
_ktrdr() {{
  local kpath={ROOT} w
  for w in "${{(@)words[2,CURRENT-1]}}"; do
    if (( ${{+_KTRDR_CMDS[$kpath $w]}} )); then kpath="$kpath $w"; fi
  done
  local -a candidates
  if [[ "$PREFIX" == -* ]]; then
    candidates=(${{=_KTRDR_OPTS[$kpath]}})
    compadd -- $candidates
  elif [[ -n "${{_KTRDR_CMDS[$kpath]}}" ]]; then
    candidates=(${{=_KTRDR_CMDS[$kpath]}})
    compadd -- $candidates
  else
    _files
  fi
}}
if (( $+functions[compdef] )); then compdef _ktrdr ktrdr; fi
"""


def register(sub: argparse._SubParsersAction, formatter: type[argparse.HelpFormatter]) -> None:
    p = sub.add_parser(
        "completion",
        help="print a shell completion script (bash or zsh)",
        formatter_class=formatter,
        description="Print a completion script for bash or zsh.\n\nexamples:\n"
        '  eval "$(ktrdr completion bash)"   # in ~/.bashrc\n'
        '  eval "$(ktrdr completion zsh)"    # in ~/.zshrc (after compinit)',
    )
    p.add_argument("shell", choices=["bash", "zsh"])
    p.set_defaults(handler=_completion)


def _completion(args: argparse.Namespace) -> int:
    from ktrdr.cli.main import build_parser

    parser = build_parser()
    print(bash_script(parser) if args.shell == "bash" else zsh_script(parser), end="")
    return 0
