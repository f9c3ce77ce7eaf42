from replyflow.policy.service import main

main()
