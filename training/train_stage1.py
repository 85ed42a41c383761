"""Stage 1 of training. Example: python -m training.train_stage1 --cate_name chair --help"""
import sys

from .cli import stage_main

if __name__ == "__main__":
    sys.exit(stage_main(1))
