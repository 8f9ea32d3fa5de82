from robotui.cli import main

raise SystemExit(main())
