"""``python -m urbankit`` runs the command line (Ctrl-C while it loads also exits with 130)."""
import sys

try:
    from .cli import main
except KeyboardInterrupt:
    print("urbankit: interrupted (Ctrl-C)", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
