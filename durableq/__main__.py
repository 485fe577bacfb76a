from durableq.cli import main

main()
