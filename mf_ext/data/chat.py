"""Chat template → token ids and labels, with prompt tokens masked.

The masking is template-agnostic: for every assistant turn ``i`` we render the conversation up to ``i`` with the
generation prompt (the template's header of an assistant turn) and the conversation including turn
``i``; the tokens between the two are that response (its text and the end-of-turn token). This asks only that the
template is prefix-stable (rendering more turns never changes earlier tokens), which we check rather than assume.
"""

from __future__ import annotations

from .sources import DataError

IGNORE_INDEX = -100


def _template_kwargs(tokenizer, chat_template: str | None) -> dict:
    """The tokenizer's own chat template wins; ``chat_template`` (the family's, see ``Family.chat_template``) is the
    fallback for tokenizers that carry none."""
    if getattr(tokenizer, "chat_template", None):
        return {}
    if chat_template:
        return {"chat_template": chat_template}
    raise DataError(
        "the tokenizer carries no chat template and the model family declares none: use a tokenizer with one "
        "(tokenizer_config.json chat_template) or pass --register_path of a family that declares chat_template"
    )


def _render(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool, chat_template=None) -> list[int]:
    kwargs = _template_kwargs(tokenizer, chat_template)
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=add_generation_prompt, **kwargs)
    if isinstance(out, dict) or hasattr(out, "input_ids"):  # BatchEncoding when a tokenizer returns a dict
        out = out["input_ids"]
    return [int(t) for t in out]


def _render_text(tokenizer, messages: list[dict[str, str]], add_generation_prompt: bool, chat_template=None) -> str:
    kwargs = _template_kwargs(tokenizer, chat_template)
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
    )


def _encode_text(tokenizer, text: str) -> list[int]:
    out = tokenizer(text, add_special_tokens=False)
    return [int(t) for t in out["input_ids"]]


def encode_conversation(
    tokenizer,
    messages: list[dict[str, str]],
    train_on: str = "responses",
    where: str = "?",
    chat_template: str | None = None,
) -> tuple[list[int], list[int]]:
    """Return ``(input_ids, labels)`` for one conversation.

    ``labels[t] == input_ids[t]`` where the model should learn to produce token ``t`` and ``IGNORE_INDEX``
    elsewhere; labels are *not* shifted (the model shifts, as MindFormers' ``LlamaForCausalLM`` does).
    ``train_on="responses"`` trains on assistant turns only (text + end-of-turn token), ``"all"`` on every token.
    ``chat_template`` is used when the tokenizer carries no template of its own (the family's ``chat_template``).

    The ids are exactly what the template gives for the whole conversation whenever the tokenization is
    prefix-stable (true for Llama 3's tiktoken pattern, where ``\\n\\n`` never merges with the next word). If it
    is not (e.g. a GPT-2 style pre-tokenizer), each prompt/response text segment is encoded on its own instead.
    """
    if train_on not in ("responses", "all"):
        raise DataError(f"train_on must be 'responses' or 'all', got {train_on!r}")
    ids = _render(tokenizer, messages, False, chat_template)
    if train_on == "all":
        return ids, list(ids)
    labels = [IGNORE_INDEX] * len(ids)
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:i], True, chat_template)
        upto = _render(tokenizer, messages[: i + 1], False, chat_template)
        if upto[: len(prompt)] != prompt or ids[: len(upto)] != upto:
            return _encode_segments(tokenizer, messages, where, chat_template)
        labels[len(prompt) : len(upto)] = upto[len(prompt) :]
    return ids, labels


def _encode_segments(
    tokenizer, messages: list[dict[str, str]], where: str, chat_template: str | None
) -> tuple[list[int], list[int]]:
    ids: list[int] = []
    labels: list[int] = []
    done = ""  # rendered text already encoded
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        prompt = _render_text(tokenizer, messages[:i], True, chat_template)
        upto = _render_text(tokenizer, messages[: i + 1], False, chat_template)
        if not (prompt.startswith(done) and upto.startswith(prompt)):
            raise DataError(
                f"{where}: the chat template is not prefix-stable even as text (rendering more turns changed "
                "earlier text), so prompt tokens cannot be masked; use --train_on all"
            )
        p = _encode_text(tokenizer, prompt[len(done) :])
        r = _encode_text(tokenizer, upto[len(prompt) :])
        ids += p + r
        labels += [IGNORE_INDEX] * len(p) + r
        done = upto
    return ids, labels
