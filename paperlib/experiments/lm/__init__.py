"""A tiny causal language model for CPU toys of LLM training: a character vocabulary, the model,
log-probabilities, sampling, supervised fine-tuning and generated data.

    from paperlib.experiments.lm import LMConfig, TinyLM, Vocab, sample, sequence_logprob, sft
"""
from paperlib.experiments.lm.data import (
           ADDITION_SYMBOLS,
           BigramGrammar,
           addition_problems,
           check_addition,
           operand_digits,
)
from paperlib.experiments.lm.model import (
           LMConfig,
           TinyLM,
           count_parameters,
           lm_loss,
           sequence_logprob,
           token_logprobs,
)
from paperlib.experiments.lm.sampling import Samples, sample
from paperlib.experiments.lm.sft import sft, sft_until
from paperlib.experiments.lm.vocab import BOS, EOS, PAD, Vocab

__all__ = ["LMConfig", "TinyLM", "Vocab", "PAD", "BOS", "EOS", "token_logprobs", "sequence_logprob", "lm_loss",
           "count_parameters", "sample", "Samples", "sft", "sft_until", "BigramGrammar", "addition_problems",
           "check_addition", "operand_digits", "ADDITION_SYMBOLS"]
