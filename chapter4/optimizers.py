"""The optimizer steps of K stacked runs (chapter4/stacked.py): the chapter's RMSprop as TensorFlow's fused
kernel on velocity variables of our own, any other Keras optimizer by Keras's own update; each hands each run's
state back to its Keras model, to be saved with it.
"""
from chapter4.backend import tf


class FusedRMSprop:
    """Keras's RMSprop as `build` makes it for the network (no momentum, not centered; its learning rate, rho
    and epsilon read from the Keras optimizer's public config) run as TensorFlow's fused kernel,
    ResourceApplyRMSProp, on velocity variables of our own: one pass over each variable where Keras's update
    makes ten elementwise passes with a temporary array each (for the 10 000 x 64 first kernel, a third of a
    Reuters step). Same update (velocity = rho*velocity + (1-rho)*g^2, variable -= lr*g / sqrt(velocity +
    epsilon)) to float rounding, and the same step count."""

    def __init__(self, config, variables):
        self.lr, self.rho, self.epsilon = config["learning_rate"], config["rho"], config["epsilon"]
        self.variables = variables
        self.velocities = [tf.Variable(tf.zeros(v.shape), trainable=False) for v in variables]
        self.scratch = [tf.Variable(tf.zeros(v.shape), trainable=False) for v in variables]   # the `mom` input
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False)

    def apply(self, grads):
        for grad, variable, velocity, mom in zip(grads, self.variables, self.velocities, self.scratch):
            tf.raw_ops.ResourceApplyRMSProp(var=variable.handle, ms=velocity.handle, mom=mom.handle, lr=self.lr,
                                            rho=self.rho, momentum=0.0, epsilon=self.epsilon, grad=grad)
        self.iterations.assign_add(1)

    def keep(self, k, optimizer, variables):
        """Run k's state into the Keras RMSprop `optimizer` of its model (built on the model's `variables`), saved
        with the model: the step count, and each variable's velocity, which Keras names after the variable's path.
        A Keras that names or lays out its state otherwise stops here (KeyError or ValueError), not silently."""
        velocity = {f"{v.path.replace('/', '_')}_velocity": ours[k] for v, ours in zip(variables, self.velocities)}
        for v in optimizer.variables:
            if v is optimizer.iterations:
                v.assign(self.iterations)
            elif v is not optimizer.learning_rate:
                v.assign(tf.reshape(velocity.pop(v.name), v.shape))
        if velocity:
            raise ValueError(f"keras's RMSprop has no state for {sorted(velocity)}")


class KerasOptimizer:
    """Any other optimizer: Keras's own update (elementwise, so each run's slice gets its own update)."""

    def __init__(self, optimizer, variables):
        self.optimizer, self.variables = optimizer.from_config(optimizer.get_config()), variables
        self.optimizer.build(variables)

    def apply(self, grads):
        self.optimizer.apply(grads, self.variables)

    def keep(self, k, optimizer, variables):
        """Run k's state into its model's `optimizer` (of the same class, built on the model's `variables` in
        the same order, so its variables are ours one for one)."""
        for mine, stacked in zip(optimizer.variables, self.optimizer.variables):
            mine.assign(tf.reshape(stacked[k], mine.shape) if len(stacked.shape) else stacked)


def optimizer_for(net, model, variables):
    """The update of network `net`'s optimizer (`model`'s, as `build` made it) on the stacked `variables`: the
    fused kernel for RMSprop, else Keras's own."""
    if net.optimizer == "rmsprop":
        return FusedRMSprop(model.optimizer.get_config(), variables)
    return KerasOptimizer(model.optimizer, variables)
