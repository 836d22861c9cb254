"""What every command shares: the one-line error type and the `--set` grammar."""


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def parse_fields(items):
    """`--set FIELD=VALUE` pairs as a dict; values read as JSON where they parse."""
    import json

    fields = {}
    for item in items:
        name, sep, text = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--set expects FIELD=VALUE, got {item!r}")
        try:
            fields[name.strip()] = json.loads(text)
        except json.JSONDecodeError:
            fields[name.strip()] = text
    return fields


def parse_field_value(text):
    """A `--set` value: true/false, none, ints, floats, comma lists, else the string."""
    if "," in text:
        return tuple(parse_field_value(t) for t in text.split(",") if t.strip())
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
