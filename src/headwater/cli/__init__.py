"""The `headwater` command."""


def main() -> None:
    from headwater.cli.app import app

    app()
