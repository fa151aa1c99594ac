from treadmilld.cli import main

raise SystemExit(main())
