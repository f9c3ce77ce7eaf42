from replyflow.generation.service import main

main()
