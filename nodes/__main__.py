from nodes.client import main

raise SystemExit(main())
