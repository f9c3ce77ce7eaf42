from replyflow.publisher.service import main

main()
