"""probe: measure where a program's time goes, working or waiting, and on what."""
