"""`python -m treadmilld_sim`: see `treadmilld_sim.runner`."""

from treadmilld_sim.runner import main

raise SystemExit(main())
