# CUDA image of the zoo: `docker build -t zoo . && docker run --gpus all zoo fit --config configs/vae_mnist.yaml`
# The official PyTorch base brings CUDA, cuDNN and a torch that satisfies pyproject's range, so pip keeps it.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

# git: W&B and the run metadata record the commit the code runs from; gcc/g++: pysptk (the MCD metric's SPTK
# mel-cepstra) has no wheel and compiles on install
RUN apt-get update && apt-get install -y --no-install-recommends git gcc g++ && rm -rf /var/lib/apt/lists/*

WORKDIR /zoo
COPY pyproject.toml README.md ./
COPY zoo ./zoo
COPY datamodules ./datamodules
COPY callbacks ./callbacks
COPY configs ./configs
RUN pip install --no-cache-dir -e .

# data/ and runs/ are meant to be volumes: docker run -v $PWD/data:/zoo/data -v $PWD/runs:/zoo/runs ...
VOLUME ["/zoo/data", "/zoo/runs"]
ENTRYPOINT ["python", "-m", "zoo"]
CMD ["--help"]
