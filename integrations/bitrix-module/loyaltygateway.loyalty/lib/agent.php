<?php
namespace Loyaltygateway\Loyalty;

/**
 * The agent (b_agent, every minute): delivers the queued events. Returns its own call, as
 * Bitrix agents do, to stay scheduled.
 */
final class Agent
{
    public static function run(): string
    {
        Queue::default()->process();
        return '\\' . __CLASS__ . '::run();';
    }
}
