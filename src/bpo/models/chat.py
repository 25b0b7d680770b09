"""Conversations as model inputs: the chat template, prompts for generation, and training
examples whose labels cover only the assistant's words.

Our presets use ChatML (SmolLM2's own format) without its default system prompt, which would
add ~20 tokens to every example for nothing. A user message is a list of content parts, so the
same code drives real LLaVA-1.5 processors, whose templates expect ``{"type": "image"}`` parts.
"""

from __future__ import annotations

IMAGE_TOKEN = "<image>"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<image>\n{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IGNORE_INDEX = -100  # label of a position that carries no loss (prompt, image, padding)


def to_messages(turns: list[dict], with_image: bool = True) -> list[dict]:
    """World conversation turns -> chat messages; the image goes before the first user turn."""
    messages = []
    for i, turn in enumerate(turns):
        parts = [{"type": "text", "text": turn["content"]}]
        if i == 0 and with_image:
            parts.insert(0, {"type": "image"})
        messages.append({"role": turn["role"], "content": parts})
    return messages


def prompt_text(processor, question: str, with_image: bool = True) -> str:
    """The text a model sees before it answers ``question`` (image placeholder not yet expanded)."""
    messages = to_messages([{"role": "user", "content": question}], with_image)
    return processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def encode_example(processor, turns: list[dict], n_image_tokens: int, with_image: bool = True,
                   max_length: int | None = None) -> tuple[list[int], list[int]]:
    """Token ids and labels of a whole conversation: every assistant answer (and the end-of-turn
    token after it) is learned; prompts, image tokens and template text are masked.

    The rendered template is split at each assistant answer by string prefixes, so the mask is
    exact for any chat template, not only ours.
    """
    tok = processor.tokenizer
    messages = to_messages(turns, with_image)
    ids: list[int] = []
    labels: list[int] = []
    done = ""
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = processor.apply_chat_template(messages[:k], add_generation_prompt=True, tokenize=False)
        full = processor.apply_chat_template(messages[: k + 1], tokenize=False)
        if not (prompt.startswith(done) and full.startswith(prompt)):
            raise ValueError("the chat template does not render conversations as growing prefixes")
        context = prompt[len(done):].replace(IMAGE_TOKEN, IMAGE_TOKEN * n_image_tokens)
        context_ids = tok(context, add_special_tokens=False).input_ids
        answer_ids = tok(full[len(prompt):], add_special_tokens=False).input_ids
        ids += context_ids + answer_ids
        labels += [IGNORE_INDEX] * len(context_ids) + answer_ids
        done = full
    if max_length is not None and len(ids) > max_length:
        # Truncating inside the image would leave fewer image tokens than image features.
        if IMAGE_TOKEN in processor.apply_chat_template(messages[:1], tokenize=False) and \
                ids[:max_length].count(tok.convert_tokens_to_ids(IMAGE_TOKEN)) < n_image_tokens:
            raise ValueError(f"max_length {max_length} cuts into the {n_image_tokens} image tokens")
        ids, labels = ids[:max_length], labels[:max_length]
    return ids, labels
