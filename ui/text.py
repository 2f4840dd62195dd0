"""Text from users made safe for Markdown: plain() and the characters it escapes; and the few explanations that
several pages give word for word (WAE_NO_ELBO), kept here so that they say the same thing everywhere.

Anything a user supplied (a link's parameters, file names, names and labels from an uploaded file, an error message
that quotes them) goes into Markdown only through plain() (issue 15).
"""
from __future__ import annotations

import re

# What Markdown (GitHub-flavoured, as Streamlit renders it) makes of one line of text, and the characters that do it:
# links and images need "[", raw HTML "<", emphasis and strikethrough "*", "~" and "_" at a word's edge, code "`",
# maths "$", Streamlit's directives (colours, badges, icons) ":name", escapes "\"; headings, quotes and lists need
# "#", ">", "-", "+" or "1." at the start. A backslash before those (CommonMark shows any escaped punctuation as
# itself) leaves nothing that renders as markup. Bare links ("http://", "www.", "name@host") are found in the text
# after the escapes are resolved (remark-gfm), so a backslash does not stop them: an invisible word joiner (U+2060)
# goes inside them instead. The rest ("(", "-", ".", "#", "_" inside a word...) is left as it is, so that "Digits
# VAE (2-D latent)", "my_digits.npz" or "test image #5" read the same in the page's source as on screen.
WORD_JOINER = "\u2060"
# Why a WAE shows no ELBO (the Train page's live curves, the Compare page's rate-distortion plot and table).
WAE_NO_ELBO = ("A WAE has **no ELBO**: its encoder gives one code per image, not a distribution q(z|x), so there is "
               "no KL term to add to the reconstruction. Instead the MMD measures how far the cloud of all codes "
               "is from the prior; with the reconstruction it is what the WAE minimises.")
_MARKDOWN_SPECIAL = re.compile(r"[\\`*\[\]<~$_]|:(?=[^\W\d_])|(?<=www)\.|:(?=//)|@", re.IGNORECASE)
_BLOCK_START = re.compile(r"^(\d+)([.)])|^([-+=#>])")  # a list, a heading, a quote or a setext line at the start


def _escape(match: re.Match) -> str:
    char, text, i = match.group(0), match.string, match.start()
    if char == "_" and 0 < i < len(text) - 1 and text[i - 1].isalnum() and text[i + 1].isalnum():
        return char  # inside a word an underscore never starts or ends emphasis
    if char == "." or char == "@" or (char == ":" and text.startswith("//", i + 1)):
        return char + WORD_JOINER if char != "." else WORD_JOINER + char  # "www\u2060.", "@\u2060", ":\u2060//"
    return "\\" + char


def plain(text, max_chars: int | None = 200) -> str:
    """`text` from a user (a link's parameter, a file name, a model's name or labels from an uploaded file, an error
    message that quotes them) made safe to put in Markdown: it shows literally, never as a link, an image, HTML,
    emphasis, a heading, maths or a coloured directive (see _MARKDOWN_SPECIAL). Line breaks become spaces (no
    headings, lists or quotes on a line of their own), and text longer than max_chars is cut with an ellipsis."""
    text = " ".join(str(text).split())
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars].rstrip() + "…"
    text = _MARKDOWN_SPECIAL.sub(_escape, text)
    return _BLOCK_START.sub(lambda m: f"{m.group(1)}\\{m.group(2)}" if m.group(1) else f"\\{m.group(3)}", text)
