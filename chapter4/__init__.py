"""The library the stages share: tasks, params, datasets, the network and its trainer, inference, statistics, io."""
