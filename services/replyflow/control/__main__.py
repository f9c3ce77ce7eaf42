import sys

from replyflow.control.service import main

sys.exit(main())
