"""Rich replies for tests: ``!report`` (Markdown with a table, code and hostile text),
``!status`` (the same without the hostile text, for pictures),
``!snippet`` (code), ``!deploy`` (a question with a default), ``!long`` (Markdown in parts)."""

from dataclasses import dataclass

from roomz_bots import Code, Markdown, PluginBot, command

#: Text that must render inert everywhere: HTML and a terminal escape sequence.
HOSTILE = "<img src=x onerror=alert(1)> <script>alert(2)</script> \x1b[31mRED\x1b[0m \x07"
REPORT = f"""# Deploy report

Everything went **fine**, see *the log* and `deploy.txt`.

- web servers
- databases

| host | status | ms |
|------|--------|---:|
| web1 | ok | 12 |
| db-primary | degraded | 340 |

```python
def rollback(host):
    return host.restore()  # {HOSTILE}
```

{HOSTILE} [click](javascript:alert(3))
"""


@dataclass
class Settings:
    """``[plugins.reporter]``."""

    deploy_timeout: float = 30.0


@command
def report(bot: PluginBot) -> Markdown:
    """A deploy report in Markdown."""
    return Markdown(REPORT)


@command
def status(bot: PluginBot) -> Markdown:
    """The report without hostile text."""
    return Markdown(REPORT.split(f"    return host.restore()  # {HOSTILE}")[0]
                    + "    return host.restore()\n```\n")


@command
def snippet(bot: PluginBot) -> Code:
    """A code snippet with a subject."""
    return Code("def f(x):\n    return x + 1", language="python", subject="A snippet")


@command
async def deploy(bot: PluginBot) -> str:
    """Ask before deploying; no answer means no."""
    choice = await bot.ask("Deploy to production?", ["yes", "no"],
                           timeout=bot.settings.deploy_timeout, default="no")
    return "Deploying now." if choice == "yes" else f"Not deploying ({choice})."


@command
def long(bot: PluginBot) -> Markdown:
    """Markdown longer than a message, with a subject."""
    code = "\n".join(f"    step_{n}()" for n in range(150))
    return Markdown(f"# Long\n\n```python\n{code}\n```", subject="Long report")
