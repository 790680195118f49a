from ocrlab.cli import main

raise SystemExit(main())
