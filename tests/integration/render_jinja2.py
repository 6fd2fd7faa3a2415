"""Renders a chat template with Python's Jinja2 as transformers does.

Usage: render_jinja2.py TEMPLATE CONTEXT.json plain|hf
  plain: jinja2.Environment(trim_blocks=False, lstrip_blocks=False)
  hf:    trim_blocks and lstrip_blocks on (transformers' apply_chat_template)
Both with loop controls, a raise_exception global and transformers' tojson
(ensure_ascii=False, indent honoured). Prints the text, "RAISED: message"
when the template called raise_exception, or "ERROR: message" when Jinja2
itself failed on it.
"""
import json
import sys

import jinja2
from jinja2.ext import loopcontrols


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def main():
    hf = sys.argv[3] == "hf"
    env = jinja2.Environment(trim_blocks=hf, lstrip_blocks=hf, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    with open(sys.argv[1], encoding="utf-8") as f:
        source = f.read()
    with open(sys.argv[2], encoding="utf-8") as f:
        context = json.load(f)
    try:
        text = env.from_string(source).render(**context)
    except Raised as e:
        text = "RAISED: " + str(e)
    except Exception as e:  # the template's own failure is an output to compare
        text = "ERROR: " + str(e)
    sys.stdout.buffer.write(text.encode("utf-8"))


if __name__ == "__main__":
    main()
